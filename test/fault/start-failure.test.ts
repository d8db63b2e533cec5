import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/embedded/embedded-postgres.js';
import { startServer, tempProject } from './support/reference-server.js';

// Every start failure prints one clear line on stderr and exits non-zero (it used to print
// `undefined` and, for a failure before the try block, leave an unhandled rejection).
const project = await tempProject();
afterAll(() => project.remove());

async function failedStart(env: Record<string, string>): Promise<{ output: string }> {
  const started = startServer({ dir: project.dir, env, timeoutMs: 60_000 });
  const error = await started.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(error).toBeDefined();
  expect(error!.message).toContain('(exit code 1, signal null)');
  return { output: error!.message };
}

describe('a start that fails', () => {
  it('says why when the database cannot be reached, and exits non-zero', async () => {
    const closed = await freePort();
    const { output } = await failedStart({
      DATABASE_URL: `postgres://postgres:secret-pw@127.0.0.1:${closed}/postgres`,
    });
    expect(output).toMatch(/Start failed: ECONNREFUSED/);
    expect(output).not.toContain('secret-pw');
    expect(output).not.toMatch(/^undefined$/m);
  }, 90_000);

  it('says why when the project folder is broken, and exits non-zero', async () => {
    await mkdir(project.dir, { recursive: true });
    await writeFile(path.join(project.dir, 'config.json'), '{}');
    const { output } = await failedStart({});
    expect(output).toMatch(/Start failed: CONFIGURATION_ERROR: .*config\.json is incomplete/);
  }, 90_000);
});
