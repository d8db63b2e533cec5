import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantMiddleware, tenantryErrorHandler } from '../../src/identity/express.js';
import { tenantLogOptions } from '../../src/observe/index.js';
import { createIdentityFixture, type IdentityFixture } from '../identity/support/identity-fixture.js';

// the Express middleware sets the log context: a module-level logger (no child passed around)
// written to in a route names the request's tenant and actor; two tenants at once keep theirs
let f: IdentityFixture;
let server: Server;
let base: string;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  f = await createIdentityFixture();
  const logger = pino(
    { ...tenantLogOptions() },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  const app = express();
  app.use((req, _res, next) => {
    (req as { id?: string }).id = String(req.headers['x-request-id']); // as pino-http would
    next();
  });
  app.use('/api', tenantMiddleware({ resolver: f.resolver() }));
  app.get('/api/work', async (req, res) => {
    await new Promise((resolve) => setTimeout(resolve, 5));
    logger.info({ marker: req.headers['x-request-id'] }, 'working for ops@example.com');
    res.json({ ok: true });
  });
  app.use(tenantryErrorHandler());
  server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await f?.close();
});

describe('Express middleware: log context', () => {
  it('lines written in a route carry tenant_id, request_id and actor; PII scrubbed', async () => {
    const alice = await f.signIn(f.users.alice, f.acme.id);
    const grace = await f.signIn(f.users.grace, f.globex.id);
    const callers = [
      { token: alice.token, tenant: f.acme.id, actor: `user:${f.users.alice}` },
      { token: grace.token, tenant: f.globex.id, actor: `user:${f.users.grace}` },
    ];
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const caller = callers[i % 2]!;
        const res = await fetch(`${base}/api/work`, {
          headers: { authorization: `Bearer ${caller.token}`, 'x-request-id': `r-${i}` },
        });
        expect(res.status).toBe(200);
      }),
    );
    expect(lines).toHaveLength(10);
    for (const line of lines) {
      const i = Number(String(line.marker).slice(2));
      const caller = callers[i % 2]!;
      expect(line).toMatchObject({
        tenant_id: caller.tenant,
        actor: caller.actor,
        request_id: `r-${i}`,
        msg: 'working for [email]',
      });
    }
  });
});
