// The import's two load paths: replica mode with a set-based foreign-key check (a role that may set
// session_replication_role, tables with no trigger of their own) and PostgreSQL's per-row checks
// (any other role or table). Both refuse a missing reference the same way, and nothing is visible.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTenant, importTenant, type ArchiveManifest } from '../../src/lifecycle/index.js';
import { rewriteArchive } from './support/archive-edit.js';
import { exportFixture, othersChecksum, seedTenant, type ExportFixture } from './support/export-fixture.js';

let f: ExportFixture;
let dir: string;
let archive: string;
let manifest: ArchiveManifest;
let granted = false;
const HOME = { tier: 'shared' as const, cluster: 'home' };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: f.db.adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function grant(on: boolean): Promise<void> {
  await admin(
    on
      ? `grant set on parameter session_replication_role to ${f.db.ownerRole}`
      : `revoke set on parameter session_replication_role from ${f.db.ownerRole}`,
  );
  granted = on;
}

/** The archive with one row of `table` pointing `column` (field `at`) at a row nobody has; manifest fixed and signed. */
async function dangling(table: string, at: number): Promise<string> {
  const step = path.join(dir, `${table}-step.tenant`);
  const file = path.join(dir, `${table}-dangling.tenant`);
  let edited: Buffer | undefined;
  await rewriteArchive(archive, step, (name, body) => {
    if (!name.endsWith(`${table}.copy.gz`)) return body;
    const lines = gunzipSync(body).toString('utf8').split('\n');
    const fields = lines[0]!.split('\t');
    fields[at] = randomUUID();
    lines[0] = fields.join('\t');
    edited = Buffer.from(lines.join('\n'));
    return gzipSync(edited);
  });
  const fixed = {
    ...manifest,
    tables: manifest.tables.map((t) => (t.name === table ? { ...t, sha256: sha(edited!), bytes: edited!.length } : t)),
  };
  await rewriteArchive(
    step,
    file,
    (name, body) => (name === 'manifest.json' ? Buffer.from(JSON.stringify(fixed)) : body),
    f.db.owner,
  );
  return file;
}

/** IMPORT_REFERENCE_MISSING, and nothing visible or changed: no tenant, the others' rows as they were. */
async function refusedMissing(file: string, options: { as?: string; replicaLoad?: boolean } = {}): Promise<void> {
  const as = options.as ?? 'acme-new';
  const before = await othersChecksum(f, [], [HOME]);
  await expect(
    importTenant({ file, catalog: f.db.owner, placements: f.placements, as, replicaLoad: options.replicaLoad }),
  ).rejects.toMatchObject({ code: 'IMPORT_REFERENCE_MISSING' });
  expect((await f.db.owner.query('select from tenantry.tenants where slug = $1', [as])).rowCount).toBe(0);
  expect(await othersChecksum(f, [], [HOME])).toBe(before);
}

/** The imported copy holds acme's rows with intact references; every other tenant is unchanged. */
async function importsIntact(slug: string, options: { replicaLoad?: boolean } = {}): Promise<string> {
  const before = await othersChecksum(f, [], [HOME]);
  const r = await importTenant({
    file: archive,
    catalog: f.db.owner,
    placements: f.placements,
    as: slug,
    replicaLoad: options.replicaLoad,
  });
  const { rows } = await f.db.owner.query<{ tasks: number; orphans: number; projects: number }>(
    `select (select count(*)::int from tasks where tenant_id = $1) as tasks,
            (select count(*)::int from projects where tenant_id = $1) as projects,
            (select count(*)::int from tasks t where t.tenant_id = $1
                and not exists (select from projects p where p.tenant_id = t.tenant_id and p.id = t.project_id)) as orphans`,
    [r.tenant.id],
  );
  expect(rows[0]).toEqual({ tasks: 12 * 3, projects: 12, orphans: 0 });
  expect(await othersChecksum(f, [r.tenant.id], [HOME])).toBe(before);
  // the session setting does not outlive the import: a fresh statement on the pool sees the default
  expect((await f.db.owner.query('show session_replication_role')).rows[0]).toEqual({
    session_replication_role: 'origin',
  });
  return r.foreignKeyChecks;
}

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-import-replica-'));
  await seedTenant(f, 'acme', 12, 3);
  await seedTenant(f, 'other', 5, 2);
  archive = path.join(dir, 'acme.tenant');
  manifest = (await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: archive }))
    .manifest;
});
afterAll(async () => {
  // a role holding a privilege on a parameter cannot be dropped
  if (granted && f) await grant(false).catch(() => undefined);
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

describe('an owner that may not set session_replication_role (no grant): the per-row path', () => {
  it('imports, references intact, other tenants untouched', async () => {
    expect(await importsIntact('acme-plain')).toBe('per-row');
  });

  it('refuses a task whose project is missing', async () => {
    // tasks: tenant_id, id, project_id, …
    await refusedMissing(await dangling('tasks', 2));
  });
});

describe('an owner granted SET on session_replication_role: replica mode, foreign keys checked set-based', () => {
  beforeAll(async () => grant(true));
  afterAll(async () => grant(false));

  it('imports, references intact, other tenants untouched', async () => {
    expect(await importsIntact('acme-fast')).toBe('set-based');
  });

  it('refuses a task whose project is missing (a key within the archive)', async () => {
    await refusedMissing(await dangling('tasks', 2));
  });

  it('refuses a membership whose user is missing (a key outside the archive: users)', async () => {
    // members: tenant_id, user_id, role
    await refusedMissing(await dangling('members', 1));
  });

  it('locks the referenced rows until the commit: a referenced user deleted meanwhile waits and fails, nothing dangles', async () => {
    // a user only the archive's membership references (acme's own row points back at its user after the export)
    const acme = (await f.db.owner.query<{ id: string }>(`select id from tenantry.tenants where slug = 'acme'`))
      .rows[0]!.id;
    const lonely = randomUUID();
    await f.db.owner.query(`insert into users (id, email) values ($1, 'lonely@example.com')`, [lonely]);
    const { rows } = await f.db.owner.query<{ user_id: string }>(
      'select user_id from members where tenant_id = $1 limit 1',
      [acme],
    );
    const original = rows[0]!.user_id;
    const swap = (from: string, to: string) =>
      f.db.owner.query('update members set user_id = $1 where tenant_id = $2 and user_id = $3', [to, acme, from]);
    await swap(original, lonely);
    const file = path.join(dir, 'lonely.tenant');
    await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: file });
    await swap(lonely, original);
    let deleted: unknown;
    const r = await importTenant({
      file,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-locked',
      onStep: async (step) => {
        if (step !== 'verified') return;
        // after the foreign-key check, before the commit: another session deletes the user
        const other = new pg.Client({ connectionString: f.db.adminUrl });
        await other.connect();
        try {
          await other.query(`set lock_timeout = '300ms'`);
          await other.query('delete from users where id = $1', [lonely]);
          deleted = 'deleted';
        } catch (error) {
          deleted = (error as { code?: string }).code;
        } finally {
          await other.end();
        }
      },
    });
    expect(r.foreignKeyChecks).toBe('set-based');
    expect(deleted).toBe('55P03');
    const { rows: after } = await f.db.owner.query<{ members: number; dangling: number }>(
      `select (select count(*)::int from members where tenant_id = $1 and user_id = $2) as members,
              (select count(*)::int from members m where m.tenant_id = $1
                  and not exists (select from users u where u.id = m.user_id)) as dangling`,
      [r.tenant.id, lonely],
    );
    expect(after[0]).toEqual({ members: 1, dangling: 0 });
  });

  it('replicaLoad: false takes the per-row path, and refuses the same archive', async () => {
    expect(await importsIntact('acme-forced', { replicaLoad: false })).toBe('per-row');
    await refusedMissing(await dangling('tasks', 2), { replicaLoad: false });
  });

  it('a table with a trigger of its own is loaded with its triggers firing (per-row path)', async () => {
    await f.db.owner.query(`
      create table task_log (tenant_id uuid, id uuid);
      create function log_task() returns trigger language plpgsql as $$
        begin insert into task_log values (new.tenant_id, new.id); return new; end $$;
      create trigger tasks_log after insert on tasks for each row execute function log_task();`);
    try {
      const checks = await importsIntact('acme-trigger');
      expect(checks).toBe('per-row');
      const { rows } = await f.db.owner.query<{ n: number }>(
        `select count(*)::int as n from task_log l join tenantry.tenants t on t.id = l.tenant_id where t.slug = 'acme-trigger'`,
      );
      expect(rows[0]!.n).toBe(12 * 3);
    } finally {
      await f.db.owner.query(`drop trigger tasks_log on tasks; drop function log_task(); drop table task_log`);
    }
  });
});
