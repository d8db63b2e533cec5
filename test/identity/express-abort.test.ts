// The Express adapter runs each tenant route with a signal that aborts when the client goes
// away: the statement running for it is cancelled (PostgreSQL cancel request), not left to finish.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { createIdentityFixture, type IdentityFixture } from './support/identity-fixture.js';

let f: IdentityFixture;
let server: Server;
let port: number;
const settled: string[] = [];

beforeAll(async () => {
  f = await createIdentityFixture();
  const app = express();
  app.use('/api', tenantMiddleware({ resolver: f.resolver() }));
  app.get('/api/slow', async (_req, res) => {
    try {
      await f.pool.query(`select 'express slow', pg_sleep(10)`);
      settled.push('completed');
      res.json({ ok: true });
    } catch (error) {
      settled.push(String((error as { code?: unknown }).code));
      if (!res.headersSent) res.status(499).end();
    }
  });
  app.use(tenantryErrorHandler());
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await f?.close();
});

async function slowRunning(): Promise<number> {
  const { rows } = await f.db.admin.query<{ n: number }>(
    `select count(*)::int as n from pg_stat_activity
      where state = 'active' and query like '%express slow%' and pid <> pg_backend_pid()`,
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

describe('Express adapter and a client that goes away', () => {
  it('cancels the statement running for the request (REQUEST_ABORTED)', async () => {
    const { token } = await f.signIn(f.users.alice, f.acme.id);
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(
        { host: '127.0.0.1', port, path: '/api/slow', headers: { authorization: `Bearer ${token}` } },
        () => resolve('answered'),
      );
      req.on('error', () => resolve('disconnected'));
      void until('the statement to run', async () => (await slowRunning()) === 1).then(() => req.destroy());
    });
    expect(outcome).toBe('disconnected');
    await until('the statement to be cancelled', async () => (await slowRunning()) === 0);
    await until('the handler to settle', async () => settled.length === 1);
    expect(settled).toEqual(['REQUEST_ABORTED']);
  });
});
