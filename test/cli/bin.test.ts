import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/tenantry.js', import.meta.url));

describe('bin/tenantry.js', () => {
  it('runs in a checkout whether or not dist/ was built, and passes the exit code on', async () => {
    const help = await promisify(execFile)(process.execPath, [bin, '--help'], { timeout: 60_000 });
    expect(help.stdout).toMatch(/Usage: tenantry/);
    const bad = await promisify(execFile)(process.execPath, [bin, 'no-such-command'], { timeout: 60_000 }).then(
      () => null,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(bad?.code).not.toBe(0);
    expect(bad?.stderr).toMatch(/unknown command/i);
  });
});
