import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

/** What a CLI run printed, and its exit code. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The CLI as a subprocess, as a user runs it: the test's environment without DATABASE_URL and
 * without any TENANTRY_* variable, plus `env` (an `undefined` leaves that variable out).
 */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  const clean = Object.fromEntries(
    Object.entries({ ...process.env, ...env }).filter(
      ([k, v]) => v !== undefined && (k in env || (!k.startsWith('TENANTRY_') && k !== 'DATABASE_URL')),
    ),
  ) as Record<string, string>;
  try {
    const r = await exec(TSX, [CLI, ...args], { env: clean, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
