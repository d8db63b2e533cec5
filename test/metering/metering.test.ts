import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import {
  exportUsage,
  meterDatabaseTime,
  meteredJob,
  meterTenantTable,
  sampleStorage,
  UsageRecorder,
  usageReport,
  type UsageCloudEvent,
} from '../../src/metering/index.js';
import { LIBRARY_TENANT_TABLES } from '../../src/lifecycle/purge/purge-plan.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;
let app: TenantPool;
let A: string;
let B: string;
const FROM = new Date('2000-01-01T00:00:00Z');
const TO = new Date('2100-01-01T00:00:00Z');

async function tenant(slug: string): Promise<string> {
  const { rows } = await db.owner.query<{ id: string }>(
    `insert into tenantry.tenants (slug, name) values ($1, $1) returning id`,
    [slug],
  );
  return rows[0]!.id;
}

async function rowsWritten(tenantId: string, op?: string): Promise<number> {
  const { rows } = await db.admin.query<{ n: string | null }>(
    `select sum(rows) as n from tenantry.usage_row_deltas where tenant_id = $1 and ($2::"char" is null or op = $2)`,
    [tenantId, op ?? null],
  );
  return Number(rows[0]!.n ?? 0);
}

/** Every usage row, as the superuser sees it: what must not change when a tenant attacks. */
async function ledgers(): Promise<string> {
  const { rows } = await db.admin.query<{ s: string }>(
    `select (select coalesce(string_agg(e::text, ',' order by e.tenant_id, e.idempotency_key), '') from tenantry.usage_events e)
         || '|' || (select coalesce(string_agg(d::text, ',' order by d.id), '') from tenantry.usage_row_deltas d) as s`,
  );
  return rows[0]!.s;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db);
  await meterTenantTable(db.owner, 'notes');
  app = db.appPool();
  A = await tenant('acme');
  B = await tenant('globex');
});
afterAll(async () => {
  await db?.drop();
});

describe('rows written: recorded by the trigger, in the transaction of the write', () => {
  it('counts inserted, updated and deleted rows per tenant', async () => {
    await runAs(A, () => app.query(`insert into notes (body) select 'n' || i from generate_series(1, 5) i`));
    await runAs(A, () => app.query(`update notes set body = body || '!' where body in ('n1', 'n2')`));
    await runAs(A, () => app.query(`delete from notes where body = 'n3'`));
    await runAs(B, () => app.query(`insert into notes (body) values ('b')`));
    expect(await rowsWritten(A, 'i')).toBe(5);
    expect(await rowsWritten(A, 'u')).toBe(2);
    expect(await rowsWritten(A, 'd')).toBe(1);
    expect(await rowsWritten(B)).toBe(1);
    // one ledger row per statement and tenant: appended, never a hot counter row
    const { rows } = await db.admin.query(`select 1 from tenantry.usage_row_deltas where tenant_id = $1`, [A]);
    expect(rows).toHaveLength(3);
  });

  it('a rolled-back write leaves no usage; skipped rows (ON CONFLICT DO NOTHING) are not counted', async () => {
    const before = await rowsWritten(A);
    const client = await app.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await client.query(`insert into notes (body) select 'r' || i from generate_series(1, 10) i`);
        await client.query('rollback');
      });
    } finally {
      client.release();
    }
    expect(await rowsWritten(A)).toBe(before);
    const id = '00000000-0000-4000-8000-000000000001';
    await runAs(A, () => app.query(`insert into notes (id, body) values ($1, 'x') on conflict do nothing`, [id]));
    await runAs(A, () => app.query(`insert into notes (id, body) values ($1, 'x') on conflict do nothing`, [id]));
    expect(await rowsWritten(A)).toBe(before + 1);
  });

  it('meters a table whose tenant column has another name (dynamic SQL path)', async () => {
    await db.owner.query(`create table docs (org uuid not null default tenantry.current_tenant_id(), body text);
      select tenantry.register_tenant_table('docs', 'org');`);
    await meterTenantTable(db.owner, 'docs');
    await runAs(B, () => app.query(`insert into docs (body) values ('a'), ('b'), ('c')`));
    const { rows } = await db.admin.query<{ n: string }>(
      `select sum(rows) as n from tenantry.usage_row_deltas where tenant_id = $1 and table_name = 'public.docs'`,
      [B],
    );
    expect(Number(rows[0]!.n)).toBe(3);
    await meterTenantTable(db.owner, 'docs', false);
    await runAs(B, () => app.query(`insert into docs (body) values ('d')`));
    const again = await db.admin.query<{ n: string }>(
      `select sum(rows) as n from tenantry.usage_row_deltas where table_name = 'public.docs'`,
    );
    expect(Number(again.rows[0]!.n)).toBe(3);
  });

  it('refuses to meter a table that is not a registered tenant table', async () => {
    await db.owner.query(`create table loose (tenant_id uuid not null)`);
    await expect(meterTenantTable(db.owner, 'loose')).rejects.toMatchObject({ code: '55000' });
  });
});

describe('another tenant cannot read or write a tenant’s usage', () => {
  beforeAll(async () => {
    const usage = new UsageRecorder({ pool: db.owner });
    await usage.record({ tenantId: A, meter: 'requests', quantity: 1, key: 'req-a-1' });
    await usage.record({ tenantId: B, meter: 'requests', quantity: 1, key: 'req-b-1' });
    await usage.close();
  });

  it('B reads only its own rows, and a report or export for A as B is empty', async () => {
    const events = await runAs(B, () =>
      app.query<{ tenant_id: string }>('select tenant_id from tenantry.usage_events'),
    );
    expect(events.rows.length).toBeGreaterThan(0);
    expect(events.rows.every((r) => r.tenant_id === B)).toBe(true);
    const deltas = await runAs(B, () =>
      app.query<{ tenant_id: string }>('select tenant_id from tenantry.usage_row_deltas'),
    );
    expect(deltas.rows.every((r) => r.tenant_id === B)).toBe(true);
    expect(await runAs(B, () => usageReport(app, { tenantId: A, from: FROM, to: TO }))).toEqual([]);
    const exported: UsageCloudEvent[] = [];
    // a generator runs when iterated: iterate inside runAs
    await runAs(B, async () => {
      for await (const e of exportUsage(app, { from: FROM, to: TO })) exported.push(e);
    });
    expect(exported.length).toBeGreaterThan(0);
    expect(exported.every((e) => e.subject === B)).toBe(true);
    // and A sees its own
    const own = await runAs(A, () => usageReport(app, { tenantId: A, from: FROM, to: TO }));
    expect(own.find((r) => r.meter === 'requests')?.quantity).toBe(1);
  });

  it('with no tenant in context the app role reads nothing', async () => {
    const { rows } = await app.query('select 1 from tenantry.usage_events');
    expect(rows).toHaveLength(0);
  });

  it('B cannot add, change or remove usage (its own or A’s), and nothing changes', async () => {
    const before = await ledgers();
    const attempts = [
      [
        `insert into tenantry.usage_events (tenant_id, idempotency_key, meter, quantity, occurred_at) values ($1, 'forged', 'requests', 1, now())`,
        [A],
      ],
      [
        `insert into tenantry.usage_events (tenant_id, idempotency_key, meter, quantity, occurred_at) values ($1, 'forged', 'requests', 1, now())`,
        [B],
      ],
      [`update tenantry.usage_events set quantity = 0`, []],
      [`delete from tenantry.usage_events where tenant_id = $1`, [A]],
      [`delete from tenantry.usage_row_deltas`, []],
      [`insert into tenantry.usage_row_deltas (tenant_id, table_name, op, rows) values ($1, 'x', 'i', 1)`, [A]],
      [`update tenantry.usage_row_deltas set rows = 1`, []],
      [`select tenantry.meter_tenant_table('notes', false)`, []],
      [`select tenantry.meter_rows_written()`, []],
    ] as const;
    for (const [sql, values] of attempts) {
      const error = await runAs(B, () => app.query(sql, [...values])).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      expect(error?.code, sql).toBe('42501');
    }
    expect(await ledgers()).toBe(before);
  });

  it('B’s writes to A’s rows are refused by the table’s policy and meter nothing for A', async () => {
    const before = await ledgers();
    const r = await runAs(B, () => app.query(`update notes set body = 'pwned' where tenant_id = $1`, [A]));
    expect(r.rowCount).toBe(0);
    await expect(
      runAs(B, () => app.query(`insert into notes (tenant_id, body) values ($1, 'x')`, [A])),
    ).rejects.toThrow();
    expect(await ledgers()).toBe(before);
  });
});

describe('UsageRecorder: exactly once under idempotency keys', () => {
  it('the same key recorded twice (and in one batch) counts once; a report sums by meter', async () => {
    const usage = new UsageRecorder({ pool: db.owner, flushIntervalMs: 10_000 });
    const C = await tenant('initech');
    const all = [1, 2, 2, 3, 3, 3].map((n) =>
      usage.record({ tenantId: C, meter: 'requests', quantity: 1, key: `r${n}` }),
    );
    await usage.flush();
    await Promise.all(all);
    const again = usage.record({ tenantId: C, meter: 'requests', quantity: 1, key: 'r1' });
    await usage.close();
    await again;
    const report = await usageReport(db.owner, { tenantId: C, from: FROM, to: TO });
    expect(report).toEqual([{ windowStart: FROM, meter: 'requests', subject: null, quantity: 3 }]);
  });

  it('refuses bad events and a full buffer with codes, and records nothing for them', async () => {
    const usage = new UsageRecorder({ pool: db.owner, maxBuffered: 2, flushIntervalMs: 10_000 });
    await expect(usage.record({ tenantId: 'nope', meter: 'requests', quantity: 1, key: 'k' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(usage.record({ tenantId: A, meter: 'Bad-Meter', quantity: 1, key: 'k' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(usage.record({ tenantId: A, meter: 'requests', quantity: -1, key: 'k' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    const first = usage.record({ tenantId: A, meter: 'buffer_test', quantity: 1, key: 'b1' });
    const second = usage.record({ tenantId: A, meter: 'buffer_test', quantity: 1, key: 'b2' });
    await expect(usage.record({ tenantId: A, meter: 'buffer_test', quantity: 1, key: 'b3' })).rejects.toMatchObject({
      code: 'USAGE_BUFFER_FULL',
    });
    await usage.close();
    await Promise.all([first, second]);
    await expect(usage.record({ tenantId: A, meter: 'buffer_test', quantity: 1, key: 'b4' })).rejects.toMatchObject({
      code: 'USAGE_RECORDER_CLOSED',
    });
    const { rows } = await db.admin.query(
      `select idempotency_key from tenantry.usage_events where meter = 'buffer_test' order by 1`,
    );
    expect(rows.map((r: { idempotency_key: string }) => r.idempotency_key)).toEqual(['b1', 'b2']);
  });

  it('a flush that fails is retried (bounded) and then rejected with USAGE_FLUSH_FAILED', async () => {
    let calls = 0;
    const broken = {
      query: () => {
        calls++;
        return Promise.reject(new Error('connection lost'));
      },
    } as unknown as typeof db.owner;
    const usage = new UsageRecorder({ pool: broken, maxAttempts: 3, flushIntervalMs: 10_000 });
    const p = usage.record({ tenantId: A, meter: 'requests', quantity: 1, key: 'lost' });
    await usage.flush().catch(() => undefined);
    await expect(p).rejects.toMatchObject({ code: 'USAGE_FLUSH_FAILED' });
    expect(calls).toBe(3);
    usage.abandon();
  });

  it('the pool observer meters each tenant’s database time; job runs count once per run', async () => {
    const usage = new UsageRecorder({ pool: db.owner, flushIntervalMs: 20 });
    const metered = db.appPool({ observer: meterDatabaseTime(usage) });
    await runAs(B, () => metered.query('select pg_sleep(0.05)'));
    await metered.query('select 1'); // no tenant: billed to nobody
    const handler = meteredJob(usage, () => 'done');
    const job = { id: 'j1', queue: 'reports', tenantId: B, actor: null, requestId: null, retryCount: 0 };
    await handler({}, job);
    await handler({}, job); // delivered twice
    await handler({}, { ...job, retryCount: 1 });
    await usage.close();
    const report = await usageReport(db.owner, { tenantId: B, from: FROM, to: TO });
    const of = (meter: string) => report.find((r) => r.meter === meter)?.quantity ?? 0;
    expect(of('db_time_us')).toBeGreaterThanOrEqual(50_000);
    expect(of('db_time_us')).toBeLessThan(5_000_000);
    expect(of('job_runs')).toBe(2);
    const none = await db.admin.query(
      `select 1 from tenantry.usage_events where meter = 'db_time_us' and tenant_id not in ($1)`,
      [B],
    );
    expect(none.rows).toHaveLength(0);
  });
});

describe('storage samples and the CloudEvents export', () => {
  it('samples bytes per tenant and table once per period', async () => {
    const at = new Date('2030-05-05T10:20:00Z');
    const first = await sampleStorage(db.owner, { at });
    expect(first.samples).toBeGreaterThanOrEqual(2);
    const again = await sampleStorage(db.owner, { at: new Date('2030-05-05T10:50:00Z') });
    expect(again.samples).toBe(0);
    const report = await usageReport(db.owner, {
      tenantId: A,
      from: new Date('2030-05-05T00:00:00Z'),
      to: new Date('2030-05-06T00:00:00Z'),
      bySubject: true,
    });
    const notes = report.find((r) => r.meter === 'storage_bytes' && r.subject === 'public.notes');
    expect(notes?.quantity).toBeGreaterThan(0);
  });

  it('exports CloudEvents with stable ids, page by page, every unit once', async () => {
    const collect = async (pageSize: number) => {
      const out: UsageCloudEvent[] = [];
      for await (const e of exportUsage(db.owner, { from: FROM, to: TO, source: 'tenantry://test', pageSize }))
        out.push(e);
      return out;
    };
    const big = await collect(5000);
    const small = await collect(2);
    expect(small.map((e) => e.id).sort()).toEqual(big.map((e) => e.id).sort());
    expect(new Set(big.map((e) => e.id)).size).toBe(big.length);
    const e = big.find((x) => x.type === 'tenantry.usage.requests')!;
    expect(e).toMatchObject({ specversion: '1.0', source: 'tenantry://test', datacontenttype: 'application/json' });
    expect(e.id.startsWith(`${e.subject}/`)).toBe(true);
    expect(Number.isNaN(Date.parse(e.time))).toBe(false);
    // the exported rows written equal the ledger
    const rows = big.filter((x) => x.type === 'tenantry.usage.rows_written' && x.subject === A);
    expect(rows.reduce((s, x) => s + x.data.quantity, 0)).toBe(await rowsWritten(A));
  });
});

describe('purge', () => {
  it('knows the usage ledgers', () => {
    const tables = LIBRARY_TENANT_TABLES.map((t) => t.table);
    expect(tables).toContain('tenantry.usage_events');
    expect(tables).toContain('tenantry.usage_row_deltas');
  });
});
