import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, chmod, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../../src/embedded/embedded-postgres.js';
import { processAlive } from '../../../src/embedded/postmaster-lock.js';

/** The repository root: `npm start` and app/main.ts run from there. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** A reference server running as a real child process, as `npm start` runs it. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** How it was started: through npm (child is npm) or node directly (child is the server). */
  readonly via: 'npm' | 'node';
  readonly url: string;
  readonly port: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code (or signal) once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A temporary project folder (its `.tenantry` is the server's TENANTRY_DIR), traversable by the postgres user. */
export async function tempProject(): Promise<{ root: string; dir: string; remove(): Promise<void> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'tenantry-fault-'));
  // as root, the embedded server runs as the postgres system user, which must reach .tenantry/pgdata
  await chmod(root, 0o711);
  return { root, dir: path.join(root, '.tenantry'), remove: () => rm(root, { recursive: true, force: true }) };
}

/**
 * Starts the reference server: `npm start` (npm → node) or `node --import tsx` directly, on its
 * own data folder and port. Resolves once the banner is printed; rejects, with what it printed,
 * when it exits first or takes longer than `timeoutMs`.
 */
export async function startServer(options: {
  dir: string;
  port?: number;
  via?: 'npm' | 'node';
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<ServerProcess> {
  // a free port can be taken by another test file's process between freePort() and the server's
  // listen (CI run 19: EADDRINUSE): with a port of our choosing, another one is tried
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, options.port ?? (await freePort()));
    } catch (error) {
      if (options.port !== undefined || attempt >= 3 || !/EADDRINUSE/.test(String(error))) throw error;
    }
  }
}

async function startOnce(
  options: { dir: string; via?: 'npm' | 'node'; env?: Record<string, string>; timeoutMs?: number },
  port: number,
): Promise<ServerProcess> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TENANTRY_DIR: options.dir,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ...options.env,
  };
  // the test runner's own variables must not leak into the server (vitest sets NODE_ENV, VITEST…)
  for (const key of Object.keys(env)) if (key.startsWith('VITEST') || key === 'NODE_OPTIONS') delete env[key];
  const child =
    options.via === 'npm'
      ? spawn('npm', ['start', '--silent'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, ['--import', 'tsx', '--conditions=tenantry-source', 'app/main.ts'], {
          cwd: ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const server: ServerProcess = {
    child,
    via: options.via ?? 'node',
    url: `http://127.0.0.1:${port}`,
    port,
    output: () => text,
    exited,
  };
  const deadline = Date.now() + (options.timeoutMs ?? 150_000);
  let gone: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((exit) => (gone = exit));
  while (!text.includes('Tenantry reference server:')) {
    if (gone || Date.now() > deadline) {
      if (!gone) child.kill('SIGKILL');
      const how = gone ? `exit code ${gone.code}, signal ${gone.signal}` : 'timed out';
      throw new Error(`the reference server did not start (${how}):\n${text.slice(-3000)}`);
    }
    await sleep(200);
  }
  return server;
}

/** The pid of the node process serving (npm's child when started through npm). */
export async function serverPid(server: ServerProcess): Promise<number> {
  const pid = server.child.pid!;
  if (server.via === 'node') return pid; // its children are the postmaster's
  const children = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  const first = children.trim().split(/\s+/).filter(Boolean)[0];
  return first ? Number(first) : pid;
}

/** The pid in the data folder's postmaster.pid, if any. */
export async function postmasterPid(dir: string): Promise<number | undefined> {
  const text = await readFile(path.join(dir, 'pgdata', 'postmaster.pid'), 'utf8').catch(() => undefined);
  const pid = text === undefined ? NaN : Number(text.split('\n')[0]);
  return Number.isSafeInteger(pid) ? pid : undefined;
}

/** Resolves when `pid` is gone; false after `timeoutMs`. */
export async function gone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (processAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Progress lines of a long fault test, shown with FAULT_DEBUG=1. */
export function step(message: string): void {
  if (process.env.FAULT_DEBUG) process.stderr.write(`[fault ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

/** Polls `test` every 250 ms until it is true; throws `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  timeoutMs: number,
  test: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await test()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/** Signs a demo user in; the token. */
export async function signIn(url: string, email: string, tenant: string): Promise<string> {
  const res = await fetch(`${url}/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: 'tenantry-demo', tenant }),
    signal: AbortSignal.timeout(15_000),
  });
  if (res.status !== 200) throw new Error(`sign-in answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/** An HTTP call with a deadline; status, headers and parsed body (network errors answer status 0). */
export async function call(
  url: string,
  token: string,
  method: 'GET' | 'POST',
  body?: unknown,
): Promise<{ status: number; retryAfter: string | null; body: unknown }> {
  try {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(20_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: parsed };
  } catch {
    return { status: 0, retryAfter: null, body: undefined };
  }
}

/**
 * The `afterAll` of a fault test on its own project: kills the server if one is left, stops the
 * postmaster on the project's data folder (SIGINT, then waits up to 20 s) and removes the folder.
 */
export async function tearDownProject(
  project: { dir: string; remove(): Promise<void> },
  server: ServerProcess | undefined,
): Promise<void> {
  server?.child.kill('SIGKILL');
  const pid = await postmasterPid(project.dir);
  if (pid) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // gone
    }
    await gone(pid, 20_000);
  }
  await project.remove();
}
