import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/embedded-postgres.js';
import { call, signIn, startServer, step, tempProject, type ServerProcess } from './support/reference-server.js';

// `tenantry rotate context-secret` run through the CLI while the reference server serves steady
// load from several concurrent clients: no request fails. The rollout follows docs/upgrades.md:
// a second instance starts with the new secret within the overlap, the first stops; once the
// overlap has ended the new instance still works, new connections included.

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');
const OVERLAP_S = 600; // covers starting a second instance on a slow shared machine (≈ 50 s here)

const project = await tempProject();
let database: EmbeddedServer | undefined;
const servers: ServerProcess[] = [];

afterAll(async () => {
  for (const s of servers) {
    s.child.kill('SIGTERM');
    await Promise.race([s.exited, sleep(30_000)]);
    s.child.kill('SIGKILL');
  }
  await database?.stop();
  await project.remove();
}, 90_000);

/** Steady load: `clients` concurrent loops of reads for two tenants, against whichever server `target()` names. */
function load(target: () => string, tokens: string[], clients = 4) {
  const statuses = new Map<number, number>();
  let running = true;
  const loops = Array.from({ length: clients }, (_, i) =>
    (async () => {
      while (running) {
        const res = await call(`${target()}/recordings?limit=5`, tokens[i % tokens.length]!, 'GET');
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        await sleep(20);
      }
    })(),
  );
  return {
    statuses,
    total: () => [...statuses.values()].reduce((a, b) => a + b, 0),
    failed: () => [...statuses.entries()].filter(([s]) => s !== 200).reduce((a, [, n]) => a + n, 0),
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

async function cli(env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await exec(TSX, [CLI, '--database-url', database!.adminUrl, '--dir', project.dir, ...args], {
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return stdout;
}

describe('rotation against the running reference server', () => {
  it('rotate context-secret under steady load: no failed request, and the new instance works after the overlap', async () => {
    const port = await freePort();
    database = await startEmbeddedPostgres({ dataDir: path.join(project.root, 'pg'), port, persistent: true });
    const first = await startServer({ dir: project.dir, env: { DATABASE_URL: database.adminUrl } });
    servers.push(first);
    step('first instance up');
    let target = first.url;
    const tokens = [
      await signIn(first.url, 'alice@acme.example', 'acme'),
      await signIn(first.url, 'grace@globex.example', 'globex'),
    ];
    const running = load(() => target, tokens);
    try {
      while (running.total() < 50) await sleep(100);

      // 1. PostgreSQL gets the new key; the old one verifies for the overlap
      const secret = randomBytes(32).toString('base64url');
      const out = await cli(
        { TENANTRY_NEW_CONTEXT_SECRET: secret },
        'rotate',
        'context-secret',
        '--overlap',
        String(OVERLAP_S),
      );
      expect(out).toContain('context secret rotated');
      const rotatedAt = Date.now();
      step('rotated');
      let seen = running.total();
      while (running.total() < seen + 50) await sleep(100);

      // 2. the rollout: an instance with the new secret, then the old one stops
      const second = await startServer({
        dir: project.dir,
        env: { DATABASE_URL: database.adminUrl, TENANTRY_CONTEXT_SECRET: secret },
      });
      servers.push(second);
      expect(second.output()).not.toContain('the context secret differs');
      target = second.url;
      step('second instance up');
      seen = running.total();
      while (running.total() < seen + 50) await sleep(100);
      expect(Date.now() - rotatedAt).toBeLessThan(OVERLAP_S * 1000); // the rollout fit in the overlap
      first.child.kill('SIGTERM');
      await first.exited;

      // 3. past the overlap: only the new secret verifies, and the new instance is unaffected,
      // new connections included (the app role's idle ones are closed while the load pauses)
      // the overlap ends now rather than after waiting it out (what it does at its end)
      const admin = new pg.Client({ connectionString: database.adminUrl });
      await admin.connect();
      try {
        await admin.query('update tenantry_private.context_key set previous_until = now()');
        seen = running.total();
        while (running.total() < seen + 50) await sleep(100);
        await running.stop();
        await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where usename = 'tenantry_app' and state = 'idle'`,
        );
      } finally {
        await admin.end();
      }
      for (const token of tokens) {
        // the first request after the terminations may meet a connection the pool had not yet seen close
        let res = await call(`${second.url}/recordings?limit=5`, token, 'GET');
        if (res.status !== 200) res = await call(`${second.url}/recordings?limit=5`, token, 'GET');
        expect(res.status).toBe(200);
      }
    } finally {
      await running.stop();
    }
    expect(running.total()).toBeGreaterThanOrEqual(150);
    expect(Object.fromEntries(running.statuses)).toEqual({ 200: running.total() });
  }, 600_000);
});
