import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');

describe('plugins example (docs/plugins.md)', () => {
  it('enabled by plan or by an admin; 404 and no handler for the tenant without it; audited', async () => {
    const { stdout } = await exec(TSX, [path.resolve('examples/plugins/plugins.ts')], {
      env: { ...process.env, DATABASE_URL: inject('adminUrl') },
      timeout: 90_000,
    });
    expect(stdout.trimEnd().split('\n')).toEqual([
      'acme: bookmarks on (plan)',
      'globex: bookmarks on (override)',
      'initech: bookmarks off (off)',
      'acme POST /bookmarks → 201 {"url":"https://acme.example/a"}',
      'globex POST /bookmarks → 201 {"url":"https://globex.example/g"}',
      'initech POST /bookmarks → 404 {"message":"Route POST:/bookmarks not found","error":"Not Found","statusCode":404}',
      'acme GET /bookmarks → 200 [{"url":"https://acme.example/a"}]',
      'initech GET /bookmarks → 404 {"message":"Route GET:/bookmarks not found","error":"Not Found","statusCode":404}',
      '  bookmarks heard user.signed-in',
      'acme emit user.signed-in → ran [bookmarks], skipped []',
      'initech emit user.signed-in → ran [], skipped [bookmarks]',
      'globex history: enable by staff:ann: trial, ticket 88',
    ]);
  }, 120_000);
});
