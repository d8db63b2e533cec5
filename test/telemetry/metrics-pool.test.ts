import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { recordRateLimited } from '../../src/telemetry/telemetry-hooks.js';
import { TenantMetrics } from '../../src/metrics/index.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let pool: TenantPool;
let metrics: TenantMetrics;
const A = randomUUID();
const B = randomUUID();

/** The value of one per-tenant counter for one label value (0 when the series does not exist). */
async function value(name: string, tenant: string): Promise<number> {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values.find((v) => v.labels.tenant === tenant)?.value ?? 0;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [A, 'a2'],
    [B, 'b1'],
  ]);
  pool = db.appPool({ max: 1 });
  metrics = new TenantMetrics({ topK: 5 }).install();
});
afterAll(async () => {
  metrics?.uninstall();
  await db?.drop();
});

describe('TenantMetrics on the pool path', () => {
  it("charges each statement's database time and rows to its own tenant, never to the other", async () => {
    await runAs(A, () => pool.query('select * from notes'));
    const before = {
      statements: await value('tenantry_tenant_db_statements_total', A),
      rows: await value('tenantry_tenant_db_rows_total', A),
      seconds: await value('tenantry_tenant_db_seconds_total', A),
    };
    expect(before.statements).toBe(1);
    expect(before.rows).toBe(2);
    expect(before.seconds).toBeGreaterThan(0);
    // from B's side: B's statements, interleaved on the one connection, land on B only
    await Promise.all([
      ...Array.from({ length: 10 }, () => runAs(B, () => pool.query('select * from notes'))),
      runAs(B, () => pool.query("insert into notes (body) values ('b2')")),
    ]);
    expect(await value('tenantry_tenant_db_statements_total', B)).toBe(11);
    expect(await value('tenantry_tenant_db_rows_total', B)).toBe(11);
    expect(await value('tenantry_tenant_db_statements_total', A)).toBe(before.statements);
    expect(await value('tenantry_tenant_db_rows_total', A)).toBe(before.rows);
    expect(await value('tenantry_tenant_db_seconds_total', A)).toBe(before.seconds);
  });

  it('leaves statements of no tenant out of every tenant series', async () => {
    const total = async () =>
      (await metrics.registry.getSingleMetric('tenantry_tenant_db_statements_total')!.get()).values.reduce(
        (sum, v) => sum + v.value,
        0,
      );
    const before = await total();
    await pool.query('select 1');
    expect(await total()).toBe(before);
  });

  it("counts recordRateLimited (the core's function the rate limits call) for the tenant named", async () => {
    recordRateLimited(A);
    recordRateLimited(A);
    expect(await value('tenantry_tenant_rate_limited_total', A)).toBe(2);
    expect(await value('tenantry_tenant_rate_limited_total', B)).toBe(0);
  });

  it('exposes tenant ids only: no slug, no statement text', async () => {
    const text = await metrics.registry.metrics();
    expect(text).not.toMatch(/notes|select/i);
    for (const [, tenant] of text.matchAll(/tenant="([^"]*)"/g))
      expect(tenant === 'other' || /^[0-9a-f-]{36}$/.test(tenant!)).toBe(true);
  });
});
