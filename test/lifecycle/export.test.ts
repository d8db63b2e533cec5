import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { exportTenant, importTenant, type ImportTenantOptions } from '../../src/lifecycle/index.js';
import type { PlacementTarget } from '../../src/tiers/placements.js';
import {
  exportFixture,
  othersChecksum,
  seedTenant,
  tenantDatabase,
  tenantSchema,
  type ExportFixture,
} from './support/export-fixture.js';

let f: ExportFixture;
let dir: string;
let acme: string;
let globex: string;
const HOME: PlacementTarget = { tier: 'shared', cluster: 'home' };

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-'));
  acme = await seedTenant(f, 'acme', 30, 4);
  globex = await seedTenant(f, 'globex', 10, 2);
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

const run = (file: string, options: Partial<ImportTenantOptions> = {}) =>
  importTenant({ file, catalog: f.db.owner, placements: f.placements, ...options });

async function rowsOf(tenantId: string, where: PlacementTarget = HOME) {
  const pool = f.placements.ownerPool(where);
  const s = where.schema ? `"${where.schema}"` : 'public';
  const projects = await pool.query<{ id: string; name: string; budget: string }>(
    `select id, name, budget from ${s}.projects where tenant_id = $1 order by name`,
    [tenantId],
  );
  const tasks = await pool.query<{
    id: string;
    title: string;
    project: string;
    tags: unknown;
    assignee: string | null;
  }>(
    `select t.id, t.title, p.name as project, t.tags, t.assignee from ${s}.tasks t
       join ${s}.projects p on p.tenant_id = t.tenant_id and p.id = t.project_id
      where t.tenant_id = $1 order by t.title`,
    [tenantId],
  );
  const members = await f.db.owner.query<{ user_id: string; role: string }>(
    'select user_id, role from members where tenant_id = $1 order by user_id',
    [tenantId],
  );
  return { projects: projects.rows, tasks: tasks.rows, members: members.rows };
}

const strip = (r: Awaited<ReturnType<typeof rowsOf>>) => ({
  projects: r.projects.map(({ id: _, ...x }) => x),
  tasks: r.tasks.map(({ id: _, ...x }) => x),
  members: r.members,
});

describe('export', () => {
  it('writes a manifest with tables in foreign-key order, counts and hashes, and the catalog row', async () => {
    const out = path.join(dir, 'acme.tenant');
    const result = await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out });
    const m = result.manifest;
    expect(m.tenant).toMatchObject({ id: acme, slug: 'acme', status: 'active', settings: { plan: 'pro' } });
    expect(m.tables.map((t) => t.name)).toEqual(['members', 'projects', 'tasks']);
    expect(m.tables.map((t) => t.rows)).toEqual([2, 30, 120]);
    expect(m.tables.find((t) => t.name === 'members')).toMatchObject({ pinned: true, remap: [] });
    expect(m.tables.find((t) => t.name === 'projects')!.remap).toEqual(['id']);
    // the foreign key's column follows the key it references; a plain uuid column does not
    expect(m.tables.find((t) => t.name === 'tasks')!.remap.sort()).toEqual(['id', 'project_id']);
    expect(m.library.core).toBeGreaterThanOrEqual(1);
    for (const t of m.tables) expect(t.sha256).toMatch(/^[0-9a-f]{64}$/);
    // the same tenant exports to the same table bytes
    const again = await exportTenant({
      catalog: f.db.owner,
      placements: f.placements,
      tenant: acme,
      out: path.join(dir, 'acme2.tenant'),
    });
    expect(again.manifest.tables.map((t) => t.sha256)).toEqual(m.tables.map((t) => t.sha256));
  });

  it('refuses an unknown tenant and an unwritable place, writing nothing', async () => {
    const out = path.join(dir, 'none.tenant');
    await expect(
      exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'nobody', out }),
    ).rejects.toMatchObject({ code: 'TENANT_NOT_FOUND' });
    await expect(
      exportTenant({
        catalog: f.db.owner,
        placements: f.placements,
        tenant: 'acme',
        out: path.join(dir, 'no/such/dir/a.tenant'),
      }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await readdir(dir)).filter((n) => n.startsWith('.tenantry-export-') || n === 'none.tenant')).toEqual([]);
  });
});

describe('import', () => {
  it('refuses an existing tenant without --replace, changing nothing', async () => {
    const before = await othersChecksum(f, [], [HOME]);
    await expect(run(path.join(dir, 'acme.tenant'))).rejects.toMatchObject({ code: 'IMPORT_TENANT_EXISTS' });
    expect(await othersChecksum(f, [], [HOME])).toBe(before);
  });

  it('restores as a new tenant: fresh tenant id and row ids, references intact, other tenants untouched', async () => {
    const before = await othersChecksum(f, [], [HOME]);
    const result = await run(path.join(dir, 'acme.tenant'), { as: 'acme-copy' });
    expect(result.tenant).toMatchObject({ slug: 'acme-copy', status: 'active', name: 'Tenant acme' });
    expect(result.tenant.id).not.toBe(acme);
    const original = await rowsOf(acme);
    const copy = await rowsOf(result.tenant.id);
    expect(strip(copy)).toEqual(strip(original));
    expect(copy.tasks).toHaveLength(120); // every task still joins its project
    const oldIds = new Set([...original.projects, ...original.tasks].map((r) => r.id));
    expect([...copy.projects, ...copy.tasks].filter((r) => oldIds.has(r.id))).toEqual([]);
    // users are global: the memberships keep pointing at the same people
    expect(copy.members).toEqual(original.members);
    expect(await othersChecksum(f, [result.tenant.id], [HOME])).toBe(before);
    // the app sees it as the new tenant, through RLS
    const app = f.db.appPool();
    const { rows } = await runAs(result.tenant.id, () => app.query('select count(*)::int as n from tasks'));
    expect(rows[0].n).toBe(120);
    // and from the other side: another tenant still sees only its own rows
    const theirs = await runAs(globex, () => app.query('select count(*)::int as n from tasks'));
    expect(theirs.rows[0].n).toBe(20);
    // identity sequences were moved past the copied values
    await f.db.owner.query(`insert into tasks (tenant_id, project_id, title) values ($1, $2, 'new')`, [
      result.tenant.id,
      copy.projects[0]!.id,
    ]);
  });

  it('imports into a schema and into a database, and exports back from there', async () => {
    await tenantSchema(f, 't_acme_s');
    const s = await run(path.join(dir, 'acme.tenant'), { as: 'acme-s', to: { tier: 'schema', schema: 't_acme_s' } });
    expect(s.placement).toMatchObject({ tier: 'schema', schema: 't_acme_s' });
    // the schema is the new tenant's: its tables refuse any other tenant's rows (tiers/003)
    const claim = await f.db.owner.query(`select tenant_id from tenantry.tenant_schemas where schema = 't_acme_s'`);
    expect(claim.rows).toEqual([{ tenant_id: s.tenant.id }]);
    const sWhere = { tier: 'schema' as const, cluster: 'home', schema: 't_acme_s' };
    expect(strip(await rowsOf(s.tenant.id, sWhere))).toEqual(strip(await rowsOf(acme)));
    const dbName = `${f.db.name}_acme_d`;
    const d = await run(path.join(dir, 'acme.tenant'), {
      as: 'acme-d',
      to: { tier: 'database', database: dbName },
      prepareTarget: () => tenantDatabase(f, dbName),
    });
    const dWhere = { tier: 'database' as const, cluster: 'home', database: dbName };
    expect(d.placement).toMatchObject(dWhere);
    expect(strip(await rowsOf(d.tenant.id, dWhere))).toEqual(strip(await rowsOf(acme)));
    const out = path.join(dir, 'acme-d.tenant');
    const back = await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme-d', out });
    expect(back.manifest.tenant.placement).toMatchObject({ tier: 'database', database: dbName });
    expect(back.manifest.tables.map((t) => t.rows)).toEqual([2, 30, 120]);
    const shared = await run(out, { as: 'acme-back', to: { tier: 'shared' } });
    expect(strip(await rowsOf(shared.tenant.id))).toEqual(strip(await rowsOf(acme)));
  });

  it('replaces a suspended tenant with its archive; refuses an active one', async () => {
    const out = path.join(dir, 'globex.tenant');
    await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'globex', out });
    const archived = await rowsOf(globex);
    await expect(run(out, { replace: true })).rejects.toMatchObject({ code: 'IMPORT_TENANT_ACTIVE' });
    await f.db.owner.query(`update tenantry.tenants set status = 'suspended' where id = $1`, [globex]);
    await f.db.owner.query(`delete from tasks where tenant_id = $1 and title like 'task 1 %'`, [globex]);
    await f.db.owner.query(`update projects set name = 'changed' where tenant_id = $1`, [globex]);
    const before = await othersChecksum(f, [globex], [HOME]);
    const result = await run(out, { replace: true });
    expect(result.replaced).toBe(true);
    expect(result.tenant).toMatchObject({ id: globex, status: 'suspended' });
    expect(await rowsOf(globex)).toEqual(archived); // same ids: a restore over itself
    expect(await othersChecksum(f, [globex], [HOME])).toBe(before);
  });
});
