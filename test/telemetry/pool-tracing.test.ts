import { randomUUID } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { activeTelemetry } from '../../src/telemetry/telemetry-hooks.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { everything, otelHarness, type OtelHarness } from './otel-harness.js';

let db: TestDatabase;
let pool: TenantPool;
let otel: OtelHarness;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [A, 'a2'],
    [B, 'b1'],
  ]);
  // one connection: every statement but the first is handed over from another's release, in
  // that other work's async context (often the other tenant's)
  pool = db.appPool({ max: 1 });
  otel = otelHarness();
});
afterAll(async () => {
  await otel?.close();
  await db?.drop();
});
beforeEach(() => otel.exporter.reset());

describe('tenantry/otel on the pool path', () => {
  it('gives each statement a CLIENT span with tenant.id, db.system and the operation, no text and no values', async () => {
    await runAs(A, () => pool.query('select body from notes where body <> $1', ['secret-value-7f3a']));
    const [span] = otel.named('SELECT');
    expect(span).toBeDefined();
    expect(span!.kind).toBe(SpanKind.CLIENT);
    expect(span!.attributes).toMatchObject({
      'tenant.id': A,
      'db.system': 'postgresql',
      'db.system.name': 'postgresql',
      'db.operation.name': 'SELECT',
      'db.response.returned_rows': 2,
    });
    expect(span!.attributes['db.query.text']).toBeUndefined();
    const all = everything(otel.spans());
    expect(all).not.toContain('secret-value-7f3a');
    // the context prefix (the signed tenant context) is never a span's business
    expect(all).not.toMatch(/set_config|tenantry\.context/);
  });

  it('parents each statement on its own work and names its own tenant, even after a hand-over from the other tenant', async () => {
    const rounds = 15;
    const work = (tenant: string, label: string) =>
      otel.tracer.startActiveSpan(label, async (parent) => {
        for (let i = 0; i < rounds; i++)
          await runAs(tenant, () => pool.query('select count(*) from notes where body <> $1', [label]));
        parent.end();
        return parent.spanContext().spanId;
      });
    const [parentA, parentB] = await Promise.all([work(A, 'work-a'), work(B, 'work-b')]);
    const statements = otel.named('SELECT');
    expect(statements).toHaveLength(2 * rounds);
    const ofA = statements.filter((s) => otel.parentOf(s) === parentA);
    const ofB = statements.filter((s) => otel.parentOf(s) === parentB);
    expect(ofA).toHaveLength(rounds);
    expect(ofB).toHaveLength(rounds);
    // from B's side: none of B's statements is labelled A, and none of A's is labelled B
    expect(ofA.every((s) => s.attributes['tenant.id'] === A)).toBe(true);
    expect(ofB.every((s) => s.attributes['tenant.id'] === B)).toBe(true);
  });

  it('stamps tenant.id on spans the application starts inside runAs (TenantSpanProcessor), and none outside', async () => {
    await runAs(B, async () => otel.tracer.startActiveSpan('app-work', (s) => s.end()));
    otel.tracer.startActiveSpan('no-tenant-work', (s) => s.end());
    expect(otel.named('app-work')[0]!.attributes['tenant.id']).toBe(B);
    expect(otel.named('no-tenant-work')[0]!.attributes['tenant.id']).toBeUndefined();
  });

  it('records a failed statement by SQLSTATE only, never the message that quotes the value', async () => {
    await expect(runAs(A, () => pool.query('select $1::int', ['not-a-number-9c2e']))).rejects.toMatchObject({
      code: '22P02',
    });
    const [span] = otel.named('SELECT');
    expect(span!.status.code).toBe(SpanStatusCode.ERROR);
    expect(span!.attributes['error.type']).toBe('22P02');
    expect(everything(otel.spans())).not.toContain('not-a-number-9c2e');
  });

  it('names statements inside a transaction (connect) and statements without a tenant', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('/* a comment */ begin');
        await client.query('insert into notes (body) values ($1)', ['a3']);
        await client.query('rollback');
      });
      await client.query('select 1');
    } finally {
      client.release();
    }
    const names = otel.spans().map((s) => [s.name, s.attributes['tenant.id']]);
    expect(names).toEqual([
      ['BEGIN', A],
      ['INSERT', A],
      ['ROLLBACK', A],
      ['SELECT', undefined],
    ]);
    expect(otel.named('INSERT')[0]!.attributes['db.response.returned_rows']).toBe(1);
  });

  it('records the text only when asked, and still no values', async () => {
    otel.uninstall();
    const { installTenantTracing } = await import('../../src/otel/index.js');
    const tracing = installTenantTracing({ tracer: otel.tracer, statementText: true });
    try {
      await runAs(A, () => pool.query('select body from notes where body = $1', ['secret-value-a1b2']));
      const [span] = otel.named('SELECT');
      expect(span!.attributes['db.query.text']).toBe('select body from notes where body = $1');
      expect(everything(otel.spans())).not.toContain('secret-value-a1b2');
    } finally {
      tracing.uninstall();
    }
  });

  it('reports nothing, and installs nothing on the hot path, once uninstalled', async () => {
    expect(activeTelemetry()).toBeUndefined();
    await runAs(A, () => pool.query('select 1'));
    expect(otel.spans()).toHaveLength(0);
  });
});
