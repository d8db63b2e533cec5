import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const exec = promisify(execFile);

describe('quick start (docs/quick-start.md)', () => {
  it('installs, migrates, creates tenants and serves a tenant route; the other tenant and no tenant see nothing', async () => {
    const { stdout } = await exec(
      path.resolve('node_modules/.bin/tsx'),
      ['--conditions=tenantry-source', path.resolve('examples/quick-start/app.ts')],
      { env: { ...process.env, DATABASE_URL: inject('adminUrl') }, timeout: 90_000 },
    );
    expect(stdout.trimEnd().split('\n')).toEqual([
      'acme POST /notes → 201 {"id":"1","body":"hi"}',
      'acme GET /notes → 200 [{"id":"1","body":"hi"}]',
      'globex GET /notes → 200 []',
      'no credential GET /notes → 401 {"statusCode":401,"code":"UNAUTHENTICATED","error":"Unauthorized","message":"Send credentials: Authorization: Bearer <token> or an API key"}',
      'globex updates every note → 0 rows',
      'a query outside any tenant → 0 rows',
    ]);
  });
});
