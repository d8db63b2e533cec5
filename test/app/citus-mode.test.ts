// TENANTRY_CITUS (docs/citus.md, "The reference server on Citus"): the mode's refusals, from the
// function and from the real start path (app/main.ts as `npm start` runs it: one line, exit 1,
// before any database is opened). No cluster needed.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { citusModeFromEnv, citusMonitoringEnv } from '../../app/citus-mode.js';
import { ROOT } from '../fault/support/reference-server.js';

const NEEDS_URL =
  'TENANTRY_CITUS=1 needs DATABASE_URL naming the Citus coordinator (a superuser URL of a database with the citus extension and its workers)';
const NO_CLUSTERS =
  'TENANTRY_CLUSTERS cannot be used with TENANTRY_CITUS=1: Citus spreads tenants over its own workers (leave TENANTRY_CLUSTERS out)';

/** Runs app/main.ts with `env` until it exits (bounded); what it printed and its exit code. */
function start(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const base: NodeJS.ProcessEnv = { ...process.env, TENANTRY_DIR: '/nonexistent/tenantry-citus-mode', ...env };
  for (const key of Object.keys(base))
    if (key.startsWith('VITEST') || key === 'NODE_OPTIONS' || (key === 'DATABASE_URL' && !env.DATABASE_URL))
      delete base[key];
  if (!env.TENANTRY_CLUSTERS) delete base.TENANTRY_CLUSTERS;
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=tenantry-source', 'app/main.ts'], {
    cwd: ROOT,
    env: base,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    }),
  );
}

describe('TENANTRY_CITUS', () => {
  it('is off by default, on with 1; anything else, 1 without DATABASE_URL and 1 with TENANTRY_CLUSTERS are refused', () => {
    expect(citusModeFromEnv({})).toBe(false);
    expect(citusModeFromEnv({ TENANTRY_CITUS: '0', TENANTRY_CLUSTERS: 'x' })).toBe(false);
    expect(citusModeFromEnv({ TENANTRY_CITUS: '1', DATABASE_URL: 'postgres://c/db' })).toBe(true);
    expect(() => citusModeFromEnv({ TENANTRY_CITUS: 'yes' })).toThrow('TENANTRY_CITUS must be 0 or 1, not "yes"');
    expect(() => citusModeFromEnv({ TENANTRY_CITUS: '1' })).toThrow(NEEDS_URL);
    expect(() =>
      citusModeFromEnv({ TENANTRY_CITUS: '1', DATABASE_URL: 'postgres://c/db', TENANTRY_CLUSTERS: '{}' }),
    ).toThrow(NO_CLUSTERS);
  });

  it('database limits and fair checkout: off by default on Citus, refused when asked for', () => {
    const env = citusMonitoringEnv({ TENANTRY_ACTIVITY: 'on' });
    expect(env).toMatchObject({ TENANTRY_ACTIVITY: 'on', TENANTRY_DB_LIMITS: 'off', TENANTRY_FAIR_CHECKOUT: 'off' });
    expect(citusMonitoringEnv({ TENANTRY_DB_LIMITS: 'OFF', TENANTRY_FAIR_CHECKOUT: '' }).TENANTRY_DB_LIMITS).toBe(
      'off',
    );
    expect(() => citusMonitoringEnv({ TENANTRY_DB_LIMITS: 'on' })).toThrow(
      'TENANTRY_DB_LIMITS=on cannot be used with TENANTRY_CITUS=1: a Citus TenantPool carries no per-tenant database limits nor fair checkout yet (leave it out or set it off)',
    );
    expect(() => citusMonitoringEnv({ TENANTRY_FAIR_CHECKOUT: 'on' })).toThrow(
      'TENANTRY_FAIR_CHECKOUT=on cannot be used',
    );
  });

  it('npm start refuses them with one line and exit code 1, before opening a database', async () => {
    const noUrl = await start({ TENANTRY_CITUS: '1' });
    expect(noUrl.code).toBe(1);
    expect(noUrl.out.trim()).toBe(`Start failed: ${NEEDS_URL}`);
    const withClusters = await start({
      TENANTRY_CITUS: '1',
      // never reached: the refusal comes first
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      TENANTRY_CLUSTERS: '{"eu":{"adminUrl":"postgres://postgres@127.0.0.1:1/none"}}',
    });
    expect(withClusters.code).toBe(1);
    expect(withClusters.out.trim()).toBe(`Start failed: ${NO_CLUSTERS}`);
  }, 120_000);
});
