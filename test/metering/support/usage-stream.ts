import pg from 'pg';
import { runAs } from '../../../src/context/tenant-context.js';
import { TenantPool } from '../../../src/data/tenant-pool.js';
import { UsageRecorder } from '../../../src/metering/index.js';

/** Where a usage stream writes: the test database's URLs and its tenants. */
export interface StreamConfig {
  appUrl: string;
  ownerUrl: string;
  contextSecret: string;
  tenants: string[];
}

/** Rows item `i` writes (1 to 3). */
export const rowsOf = (i: number): number => 1 + (i % 3);

/** The deterministic ids of item `i`'s rows: a retried item writes the same rows, skipped on conflict. */
export function rowIds(i: number): string[] {
  return Array.from(
    { length: rowsOf(i) },
    (_, j) => `00000000-0000-4000-8000-${(i * 4 + j).toString(16).padStart(12, '0')}`,
  );
}

/** The pools one "process" of the stream uses, named so a crash test finds their backends. */
export function streamPools(config: StreamConfig): { app: TenantPool; owner: pg.Pool } {
  const app = new TenantPool({
    connectionString: config.appUrl,
    contextSecret: config.contextSecret,
    application_name: 'metering-crash-app',
    max: 4,
    poolerSelfTest: false,
  });
  const owner = new pg.Pool({ connectionString: config.ownerUrl, application_name: 'metering-crash-owner', max: 2 });
  // a terminated idle backend is reported on the pool: expected here
  app.on('error', () => undefined);
  owner.on('error', () => undefined);
  return { app, owner };
}

/** A recorder as the stream uses it: short interval, small batches, few attempts. */
export function streamRecorder(owner: pg.Pool): UsageRecorder {
  return new UsageRecorder({ pool: owner, flushIntervalMs: 3, maxBatch: 20, maxAttempts: 2, counterWindowMs: 1000 });
}

/**
 * One unit of work, as a request handler would do it: a write (rows metered by the trigger in
 * its transaction), then the request's usage event, acknowledged once durable, and one unit on
 * a counter (acknowledged by the next flush).
 */
export async function runItem(app: TenantPool, usage: UsageRecorder, tenants: string[], i: number): Promise<void> {
  const tenant = tenants[i % tenants.length]!;
  await runAs(tenant, () =>
    app.query(`insert into notes (id, body) select x, 'item' from unnest($1::uuid[]) x on conflict do nothing`, [
      rowIds(i),
    ]),
  );
  await usage.record({ tenantId: tenant, meter: 'requests', quantity: 1, key: `req:${i}` });
  usage.add(tenant, 'test_units', 1);
}
