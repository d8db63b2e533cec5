import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

describe('logging example (docs/logging.md)', () => {
  it('prints lines that name their tenant and carry no personal data', async () => {
    const { stdout } = await exec(
      path.resolve('node_modules/.bin/tsx'),
      ['--conditions=tenantry-source', path.resolve('examples/logging/logging.ts')],
      { timeout: 60_000 },
    );
    expect(stdout.trimEnd().split('\n')).toEqual([
      '{"level":30,"msg":"starting"}',
      '{"level":30,"tenant_id":"0b6f9c5e-1f55-4c1b-9d5a-5d2b8f0c7a11","request_id":"req-1","actor":"user:42","requestedBy":"[email]","msg":"export mailed to [email]"}',
      '{"level":40,"tenant_id":"7e0c2d4a-93b1-4f0e-8a6c-2c9e1b5d3f22","card":"[card]","order":"4111111111111112","from":"203.0.113.7","msg":"payment failed"}',
    ]);
  });
});
