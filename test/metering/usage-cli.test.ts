import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { meterTenantTable, UsageRecorder } from '../../src/metering/index.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, ROLE_PASSWORD, type TestDatabase } from '../support/test-database.js';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');

let db: TestDatabase;
let acme: string;

async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(TSX, [CLI, '--database-url', db.adminUrl, ...args], {
      env: {
        ...process.env,
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_APP_ROLE: db.appRole,
        TENANTRY_OWNER_ROLE: db.ownerRole,
        TENANTRY_CONTEXT_SECRET: db.contextSecret,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db);
  await meterTenantTable(db.owner, 'notes');
  const { rows } = await db.owner.query<{ id: string; slug: string }>(
    `insert into tenantry.tenants (slug, name) values ('acme', 'Acme'), ('globex', 'Globex') returning id, slug`,
  );
  acme = rows.find((r) => r.slug === 'acme')!.id;
  const globex = rows.find((r) => r.slug === 'globex')!.id;
  const usage = new UsageRecorder({ pool: db.owner });
  const at = new Date('2026-11-03T10:15:00Z');
  await Promise.all([
    usage.record({ tenantId: acme, meter: 'requests', quantity: 1, key: 'r1', occurredAt: at }),
    usage.record({
      tenantId: acme,
      meter: 'requests',
      quantity: 1,
      key: 'r2',
      occurredAt: new Date('2026-11-04T01:00:00Z'),
    }),
    usage.record({ tenantId: globex, meter: 'requests', quantity: 1, key: 'r1', occurredAt: at }),
  ]);
  await usage.close();
});
afterAll(async () => {
  await db?.drop();
});

describe('tenantry tenants usage / usage-export', { timeout: 180_000 }, () => {
  it('prints a tenant’s usage per day as CSV, and only that tenant’s', async () => {
    const r = await tenantry(
      'tenants',
      'usage',
      'acme',
      '--from',
      '2026-11-01',
      '--to',
      '2026-12-01',
      '--granularity',
      'day',
      '--csv',
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([
      'window_start,meter,subject,quantity',
      '2026-11-03T00:00:00.000Z,requests,,1',
      '2026-11-04T00:00:00.000Z,requests,,1',
    ]);
  });

  it('refuses a bad range with a code, not a stack', async () => {
    const r = await tenantry('tenants', 'usage', 'acme', '--from', 'yesterday');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('INVALID_ARGUMENT');
    const reversed = await tenantry('tenants', 'usage', 'acme', '--from', '2026-12-01', '--to', '2026-11-01');
    expect(reversed.stderr).toContain('INVALID_ARGUMENT');
  });

  it('exports CloudEvents as NDJSON, one tenant or all', async () => {
    const all = await tenantry(
      'tenants',
      'usage-export',
      '--from',
      '2026-11-01',
      '--to',
      '2026-12-01',
      '--source',
      'tenantry://test',
    );
    expect(all.code, all.stderr).toBe(0);
    const events = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; subject: string; type: string });
    expect(events).toHaveLength(3);
    expect(new Set(events.map((e) => e.id)).size).toBe(3);
    const one = await tenantry(
      'tenants',
      'usage-export',
      '--from',
      '2026-11-01',
      '--to',
      '2026-12-01',
      '--tenant',
      'acme',
    );
    const mine = one.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { subject: string });
    expect(mine.map((e) => e.subject)).toEqual([acme, acme]);
  });
});
