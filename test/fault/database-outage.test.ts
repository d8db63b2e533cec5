import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/embedded-postgres.js';
import {
  call,
  eventually,
  signIn,
  startServer,
  step,
  tempProject,
  type ServerProcess,
} from './support/reference-server.js';
import { SseFollower } from './support/sse-follower.js';
import { Writers } from './support/writers.js';

// PostgreSQL stopped for 20 s under load, with SSE streams open: the reference server answers
// 503 with Retry-After (never 500) meanwhile, and the SSE clients, following
// docs/live-channels.md, get the events written after PostgreSQL is back. The test owns the
// PostgreSQL server (DATABASE_URL), so that it can keep it down as long as it wants.
const OUTAGE_MS = 20_000;
const project = await tempProject();
const dataDir = path.join(project.root, 'pg');
let database: EmbeddedServer | undefined;
let server: ServerProcess | undefined;
const followers: SseFollower[] = [];

afterAll(async () => {
  for (const f of followers) f.close();
  if (server) {
    server.child.kill('SIGTERM');
    await Promise.race([server.exited, sleep(30_000)]);
    server.child.kill('SIGKILL');
    step('server stopped');
  }
  await database?.stop();
  step('PostgreSQL stopped at the end');
  await project.remove();
}, 90_000);

describe('PostgreSQL down for 20 s under load', () => {
  it('answers 503 with Retry-After, no 500, and SSE clients get the events written after recovery', async () => {
    const port = await freePort();
    const start = () => startEmbeddedPostgres({ dataDir, port, persistent: true, restartOnCrash: false });
    database = await start();
    server = await startServer({ dir: project.dir, env: { DATABASE_URL: database.adminUrl } });
    step('started');
    const url = server.url;
    const acme = await signIn(url, 'alice@acme.example', 'acme');
    const globex = await signIn(url, 'grace@globex.example', 'globex'); // served from its own schema
    const streams = [new SseFollower(url, acme), new SseFollower(url, globex)];
    followers.push(...streams);
    await eventually('both streams open', 30_000, () => streams.every((f) => f.statuses.includes(200)));

    // load: writers of two tenants, and readers, through the outage
    const writers = [new Writers(() => url, acme, 2, 'acme'), new Writers(() => url, globex, 2, 'globex')];
    const reads = new Map<number, number>();
    let readsWithoutRetryAfter = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const res = await call(`${url}/recordings?limit=5`, acme, 'GET');
        reads.set(res.status, (reads.get(res.status) ?? 0) + 1);
        if (res.status === 503 && res.retryAfter === null) readsWithoutRetryAfter += 1;
        await sleep(100);
      }
    })();
    await eventually('writes before the outage', 30_000, () => writers.every((w) => w.count >= 5));

    await database.stop();
    database = undefined;
    step('PostgreSQL stopped');
    await sleep(OUTAGE_MS);
    database = await start();
    step('PostgreSQL started again');

    // writes succeed again (bounded), and what is written now reaches the open streams
    const counts = writers.map((w) => w.count);
    await eventually('writes after the outage', 60_000, () => writers.every((w, i) => w.count >= counts[i]! + 5));
    reading = false;
    await reader;
    await Promise.all(writers.map((w) => w.stop()));
    step('writers stopped');
    const [acmeAfter, globexAfter] = writers.map((w, i) => w.acked.slice(counts[i]));
    await eventually(
      'the events written after recovery, on both streams',
      60_000,
      () =>
        acmeAfter!.every((id) => streams[0]!.payloadIds.has(id)) &&
        globexAfter!.every((id) => streams[1]!.payloadIds.has(id)),
    );

    // during the outage: 503 with Retry-After, never 500; no stream was told to stop
    for (const w of writers) {
      expect(w.count5xx(500)).toBe(0);
      expect(w.count5xx(503)).toBeGreaterThan(0);
      expect(w.unavailableWithoutRetryAfter).toBe(0);
    }
    expect(reads.get(500) ?? 0).toBe(0);
    expect(reads.get(503) ?? 0).toBeGreaterThan(0);
    expect(readsWithoutRetryAfter).toBe(0);
    for (const f of streams) expect(f.endCode).toBeUndefined();
    // each stream saw no event twice and none of the other tenant's
    expect([...streams[0]!.payloadIds].some((id) => writers[1]!.acked.includes(id))).toBe(false);
    expect([...streams[1]!.payloadIds].some((id) => writers[0]!.acked.includes(id))).toBe(false);
  }, 200_000);
});
