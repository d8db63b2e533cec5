import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTenant, importTenant } from '../../src/lifecycle/index.js';
import type { PlacementTarget } from '../../src/tiers/placements.js';
import {
  exportFixture,
  othersChecksum,
  seedTenant,
  tenantSchema,
  type ExportFixture,
} from './support/export-fixture.js';

const exec = promisify(execFile);
const CHILD = 'test/lifecycle/support/import-child.ts';
const HOME = { tier: 'shared' as const, cluster: 'home' };

let f: ExportFixture;
let dir: string;
let archive: string;

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-crash-'));
  await seedTenant(f, 'acme', 1000, 10);
  await seedTenant(f, 'other', 10, 2);
  archive = path.join(dir, 'acme.tenant');
  await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: archive });
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

async function killedAt(crashAt: string, as: string, to?: PlacementTarget): Promise<void> {
  const env = { ownerUrl: f.db.ownerUrl, file: archive, as, crashAt, to };
  // node itself (not the tsx wrapper, which reports a child's signal as an exit code)
  const error = await exec(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, IMPORT_ENV: JSON.stringify(env) },
  }).then(
    () => undefined,
    (e: { signal?: string; stderr?: string }) => e,
  );
  expect(error?.signal, error?.stderr).toBe('SIGKILL');
  // the killed process's session (and the slug's import lock) goes once its backend notices the
  // closed socket, which a backend in the middle of a statement does only when that ends: a re-run
  // at once can meet the lock still held (IMPORT_BUSY, CI run 25). Wait for it, bounded, as a
  // person re-running the command a moment later would
  const key = `tenantry.import:${as}`;
  const client = await f.db.owner.connect();
  try {
    await expect
      .poll(
        async () => {
          const { rows } = await client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [
            key,
          ]);
          if (rows[0]!.ok) await client.query('select pg_advisory_unlock(hashtext($1))', [key]);
          return rows[0]!.ok;
        },
        { timeout: 15_000 },
      )
      .toBe(true);
  } finally {
    client.release();
  }
}

/** Rows in the tenant tables whose tenant the catalog does not know. */
async function orphans(): Promise<number> {
  const { rows } = await f.db.owner.query<{ n: number }>(
    `select (select count(*) from tasks where tenant_id not in (select id from tenantry.tenants))::int
          + (select count(*) from projects where tenant_id not in (select id from tenantry.tenants))::int
          + (select count(*) from members where tenant_id not in (select id from tenantry.tenants))::int as n`,
  );
  return rows[0]!.n;
}

describe('an import killed mid-way leaves nothing visible, and a re-run completes it', () => {
  for (const crashAt of ['loading', 'verified', 'switching']) {
    // a child process and a re-run each: slow on a loaded machine
    it(`killed at ${crashAt}`, { timeout: 240_000 }, async () => {
      const as = `acme-${crashAt}`;
      const before = await othersChecksum(f, [], [HOME]);
      await killedAt(crashAt, as);
      expect((await f.db.owner.query('select from tenantry.tenants where slug = $1', [as])).rowCount).toBe(0);
      // other tenants untouched; rows of the attempt exist only once committed (switching), under a refused route
      const attempts = (
        await f.db.owner.query<{ id: string }>('select tenant_id as id from tenantry.tenant_imports where slug = $1', [
          as,
        ])
      ).rows.map((r) => r.id);
      expect(attempts).toHaveLength(1);
      expect(await othersChecksum(f, attempts, [HOME])).toBe(before);
      const left = await orphans();
      if (crashAt === 'switching') {
        expect(left).toBe(2 + 1000 + 10_000);
        const { rows } = await f.db.owner.query(
          `select state from tenantry.local_tenants l join tenantry.tenant_imports i on i.tenant_id::text = l.tenant_key where i.slug = $1`,
          [as],
        );
        expect(rows).toEqual([{ state: 'moved' }]);
      } else expect(left).toBe(0);
      const result = await importTenant({ file: archive, catalog: f.db.owner, placements: f.placements, as });
      expect(result.tables.map((t) => t.rows)).toEqual([2, 1000, 10_000]);
      expect(await orphans()).toBe(0);
      expect(await othersChecksum(f, [result.tenant.id], [HOME])).toBe(before);
      const { rows: steps } = await f.db.owner.query<{ step: string }>(
        'select step from tenantry.tenant_imports where slug = $1 order by created_at',
        [as],
      );
      expect(steps.map((s) => s.step)).toEqual(['abandoned', 'done']);
    });
  }
});

describe('an import into a schema of its own killed after its load committed: the same command runs again', () => {
  it(
    'killed at switching (rows, claim and route of the dead attempt in t_crash), then re-run as is',
    { timeout: 240_000 },
    async () => {
      const to = { tier: 'schema' as const, cluster: 'home', schema: 't_crash' };
      await tenantSchema(f, 't_crash');
      const before = await othersChecksum(f, [], [HOME]);
      await killedAt('switching', 'acme-schema', to);
      expect((await f.db.owner.query('select from tenantry.tenants where slug = $1', ['acme-schema'])).rowCount).toBe(
        0,
      );
      // before the fix the dead attempt's claim made t_crash "another tenant's": IMPORT_TARGET_TAKEN for ever
      const result = await importTenant({
        file: archive,
        catalog: f.db.owner,
        placements: f.placements,
        as: 'acme-schema',
        to,
      });
      expect(result.placement.schema).toBe('t_crash');
      expect(result.tables.map((t) => t.rows)).toEqual([2, 1000, 10_000]);
      const { rows: left } = await f.db.owner.query<{ n: number }>(
        `select count(*)::int as n from t_crash.tasks where tenant_id <> $1`,
        [result.tenant.id],
      );
      expect(left[0]!.n).toBe(0);
      expect(await othersChecksum(f, [result.tenant.id], [HOME])).toBe(before);
      const { rows: steps } = await f.db.owner.query<{ step: string }>(
        'select step from tenantry.tenant_imports where slug = $1 order by created_at',
        ['acme-schema'],
      );
      expect(steps.map((x) => x.step)).toEqual(['abandoned', 'done']);
    },
  );
});
