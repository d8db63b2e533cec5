import { execFile } from 'node:child_process';
import pg from 'pg';
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

/** Whether `role` logs in to `adminUrl`'s server with `password`: 'ok', or the error's SQLSTATE. */
export async function loginOutcome(adminUrl: string, role: string, password: string): Promise<string> {
  const u = new URL(adminUrl);
  u.username = role;
  u.password = password;
  const client = new pg.Client({ connectionString: u.toString() });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return 'ok';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The four role variables naming a test database's own roles (the CLI then uses them, not the defaults). */
export function roleVariables(roles: {
  app: string;
  owner: string;
  support: string;
  router: string;
}): Record<string, string> {
  return {
    TENANTRY_APP_ROLE: roles.app,
    TENANTRY_OWNER_ROLE: roles.owner,
    TENANTRY_SUPPORT_ROLE: roles.support,
    TENANTRY_ROUTER_ROLE: roles.router,
  };
}
