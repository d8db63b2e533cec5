import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { runAs, TenantCatalog } from '../../src/index.js';
import { liveSchemaSql, PostgresLiveTransport, TenantEventBus } from '../../src/live/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { Collector } from './support/live-helpers.js';

// The listener reaches PostgreSQL through a TCP proxy the test can cut and hold down, so that
// reconnect attempts fail for a while (the pools go direct and keep writing).
let db: TestDatabase;
let proxy: net.Server;
let up = true;
const sockets = new Set<net.Socket>();

function cut(): void {
  up = false;
  for (const socket of sockets) socket.destroy();
}

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(liveSchemaSql({ appRole: db.appRole }));
  const target = new URL(db.appUrl);
  proxy = net.createServer((client) => {
    if (!up) return client.destroy();
    const server = net.connect(Number(target.port || 5432), target.hostname);
    for (const [from, to] of [
      [client, server],
      [server, client],
    ] as const) {
      sockets.add(from);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
      from.pipe(to);
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  cut();
  await new Promise((resolve) => proxy?.close(resolve));
  await db?.drop();
});

describe('a listener that cannot reconnect for a while', () => {
  it('keeps retrying with backoff, then re-reads what was written during the outage', async () => {
    const tenant = (await new TenantCatalog(db.owner).create({ slug: 'alpha', name: 'Alpha' })).id;
    const viaProxy = new URL(db.appUrl);
    viaProxy.host = `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    let failures = 0;
    let enough!: () => void;
    const failedThrice = new Promise<void>((resolve) => (enough = resolve));
    const pool = db.appPool();
    const bus = new TenantEventBus({
      pool,
      transport: new PostgresLiveTransport({ connectionString: viaProxy.toString(), minDelayMs: 10, maxDelayMs: 80 }),
      onError: () => {
        if (++failures >= 3) enough();
      },
    });
    try {
      const got = new Collector();
      await bus.subscribe(tenant, got.handle);
      const emit = (payload: object) =>
        runAs(tenant, () =>
          pool.query('select emit_tenant_event($1, $2::jsonb)', ['thing.changed', JSON.stringify(payload)]),
        );
      await emit({ n: 0 });
      await got.until((events) => events.length === 1);

      cut();
      await failedThrice; // the drop, then reconnects refused by the proxy
      for (let n = 1; n <= 4; n++) await emit({ n });
      up = true;
      await emit({ n: 5, mark: 'back' });
      await got.untilMark('back');
      expect(got.events.map((e) => e.payload.n)).toEqual([0, 1, 2, 3, 4, 5]);
      expect(got.seqs).toEqual([1, 2, 3, 4, 5, 6]);
      expect(failures).toBeGreaterThanOrEqual(3);
    } finally {
      await bus.close();
    }
  });
});
