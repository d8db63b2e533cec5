// The reference server never hangs on the database: a request past its deadline answers 504
// DEADLINE_EXCEEDED at once and its running statement is cancelled; a client that disconnects
// before its write runs leaves nothing written, even when the lock that held it clears later.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
let port: number;

beforeAll(async () => {
  f = await createAppFixture({ requestDeadlineMs: 1000 });
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  port = (f.app.server.address() as AddressInfo).port;
});
afterAll(() => f?.close());

/** Backends of the app role running a statement on recordings now. */
async function runningOnRecordings(): Promise<number> {
  const { rows } = await f.db.admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where usename = $1 and state = 'active' and query ilike '%recordings%' and pid <> pg_backend_pid()`,
    [f.db.appRole],
  );
  return rows[0]!.n;
}

async function until(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Holds ACCESS EXCLUSIVE on the recordings table until the returned function is called. */
async function lockRecordings(): Promise<() => Promise<void>> {
  const locker = await f.db.admin.connect();
  await locker.query('begin');
  await locker.query('lock table recordings in access exclusive mode');
  return async () => {
    await locker.query('rollback');
    locker.release();
  };
}

describe('request deadline', () => {
  it('a request stuck on a lock answers 504 DEADLINE_EXCEEDED by its deadline; its statement is cancelled', async () => {
    const token = await f.token(f.users.alice, f.a);
    const unlock = await lockRecordings();
    try {
      const started = Date.now();
      const res = await f.call('GET', '/recordings', { token });
      expect(res.statusCode).toBe(504);
      expect(res.json()).toEqual({ error: { code: 'DEADLINE_EXCEEDED' } });
      expect(Date.now() - started).toBeLessThan(4000);
      await until('the cancelled statement to end', async () => (await runningOnRecordings()) === 0);
    } finally {
      await unlock();
    }
    // and the server is healthy once the lock is gone
    expect((await f.call('GET', '/recordings', { token })).statusCode).toBe(200);
  });
});

describe('client disconnect', () => {
  it('a POST whose client goes away while it waits on a lock is not written when the lock clears', async () => {
    const token = await f.token(f.users.alice, f.a);
    const before = (await f.recordingsOf(f.a)).length;
    const unlock = await lockRecordings();
    try {
      const body = JSON.stringify({
        title: 'written after the client left',
        durationSeconds: 5,
        mimeType: 'audio/ogg',
      });
      const gone = await new Promise<string>((resolve) => {
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/recordings',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          },
          () => resolve('answered'),
        );
        req.on('error', () => resolve('disconnected'));
        req.end(body);
        // the client gives up once its insert waits on the lock
        void until('the insert to wait on the lock', async () => (await runningOnRecordings()) === 1).then(() =>
          req.destroy(),
        );
      });
      expect(gone).toBe('disconnected');
      await until('the cancelled insert to end', async () => (await runningOnRecordings()) === 0);
    } finally {
      await unlock();
    }
    await new Promise((r) => setTimeout(r, 300));
    const after = await f.recordingsOf(f.a);
    expect(after.length).toBe(before);
    expect(after.map((r) => r.title)).not.toContain('written after the client left');
  });
});
