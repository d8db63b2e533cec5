// The multi-server harness (test/support/clusters.ts): three real PostgreSQL servers at once, each
// with Tenantry installed under the same roles and context secret, each isolating its tenants, and
// nothing left running once the harness stops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { existsSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { runAs } from '../../src/context/tenant-context.js';
import { ContextSigner } from '../../src/data/context-signer.js';
import { startTestClusters, useTestClusters, type ClusterDatabase, type TestClusters } from '../support/clusters.js';
import { createNotesTable } from '../support/notes-table.js';
import { codeOf } from '../support/refusal-code.js';

/** Runs `sql` on one plain connection as `url`'s role, after setting the raw context value in the same transaction. */
async function withRawContext<R extends pg.QueryResultRow>(url: string, value: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    await client.query(`select set_config('tenantry.context', $1, true)`, [value]);
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.query('rollback').catch(() => undefined);
    await client.end();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const A = randomUUID();
const B = randomUUID();

describe('three PostgreSQL servers for one test file', () => {
  let fleet: TestClusters;
  const dbs: ClusterDatabase[] = [];

  beforeAll(async () => {
    fleet = await startTestClusters(3);
    console.log(`[clusters-harness] 3 clusters started in ${fleet.startupMs} ms`);
    for (const cluster of fleet.clusters) {
      const db = await cluster.createDatabase();
      // each server holds its own rows: the same tenant's data differs per cluster
      await createNotesTable(db, [
        [A, `a-on-${cluster.name}`],
        [B, `b-on-${cluster.name}`],
      ]);
      dbs.push(db);
    }
  });
  afterAll(() => fleet?.stop());

  it('runs three distinct servers, on their own ports and processes, ready for logical replication', async () => {
    expect(fleet.clusters.map((c) => c.name)).toEqual(['c1', 'c2', 'c3']);
    expect(new Set(fleet.clusters.map((c) => c.port)).size).toBe(3);
    const embedded = fleet.clusters.filter((c) => c.embedded);
    expect(new Set(embedded.map((c) => c.pid)).size).toBe(embedded.length);
    for (const c of embedded) {
      expect(c.walLevel).toBe('logical');
      expect(alive(c.pid!)).toBe(true);
    }
    for (const db of dbs) {
      const { rows } = await db.admin.query<{ port: number; body: string }>(
        'select inet_server_port() as port, body from notes order by body',
      );
      expect(rows.map((r) => r.port)).toEqual([db.cluster.port, db.cluster.port]);
      expect(rows.map((r) => r.body)).toEqual([`a-on-${db.cluster.name}`, `b-on-${db.cluster.name}`]);
    }
  });

  it('installs Tenantry on each server with the same role names', async () => {
    for (const db of dbs) {
      expect([db.appRole, db.ownerRole]).toEqual([fleet.roles.app, fleet.roles.owner]);
      const { rows } = await db.admin.query<{ key: string; value: string }>(
        `select key, value from tenantry.meta where key in ('app_role', 'owner_role') order by key`,
      );
      expect(rows).toEqual([
        { key: 'app_role', value: fleet.roles.app },
        { key: 'owner_role', value: fleet.roles.owner },
      ]);
    }
  });

  it('isolates two tenants on each server: B can neither read, change nor forge A’s rows', async () => {
    for (const db of dbs) {
      const pool = db.appPool();
      const aRow = (await db.admin.query<{ id: string }>('select id from notes where tenant_id = $1', [A])).rows[0]!.id;
      expect((await runAs(A, () => pool.query('select body from notes'))).rows).toEqual([
        { body: `a-on-${db.cluster.name}` },
      ]);
      await runAs(B, async () => {
        expect((await pool.query('select body from notes where id = $1', [aRow])).rowCount).toBe(0);
        expect((await pool.query(`update notes set body = 'taken' where id = $1`, [aRow])).rowCount).toBe(0);
        expect((await pool.query('delete from notes where id = $1', [aRow])).rowCount).toBe(0);
        expect(await codeOf(pool.query('insert into notes (tenant_id, body) values ($1, $2)', [A, 'forged']))).toBe(
          '42501',
        );
      });
      const truth = await db.admin.query('select tenant_id, body from notes order by body');
      expect(truth.rows).toEqual([
        { tenant_id: A, body: `a-on-${db.cluster.name}` },
        { tenant_id: B, body: `b-on-${db.cluster.name}` },
      ]);
    }
  });

  it('one tenant on two servers: each TenantPool reads and writes only its own server’s rows', async () => {
    const [one, two] = [dbs[0]!.appPool(), dbs[1]!.appPool()];
    await runAs(A, async () => {
      await one.query('insert into notes (body) values ($1)', ['a-written-to-c1']);
      await two.query('insert into notes (body) values ($1)', ['a-written-to-c2']);
      expect((await one.query('select body from notes order by body')).rows.map((r) => r.body)).toEqual([
        'a-on-c1',
        'a-written-to-c1',
      ]);
      expect((await two.query('select body from notes order by body')).rows.map((r) => r.body)).toEqual([
        'a-on-c2',
        'a-written-to-c2',
      ]);
    });
    expect((await dbs[2]!.admin.query('select body from notes where body like $1', ['a-written%'])).rowCount).toBe(0);
  });

  it('a context value signed once is accepted on every server; one signed with another secret is refused', async () => {
    const value = new ContextSigner(fleet.contextSecret).encode(A);
    for (const db of dbs.slice(0, 2)) {
      const rows = await withRawContext<{ tenant: string; body: string }>(
        db.appUrl,
        value,
        'select tenantry.current_tenant_id() as tenant, body from notes order by body',
      );
      expect(rows.map((r) => r.tenant)).toEqual(rows.map(() => A));
      expect(rows.map((r) => r.body)).toContain(`a-on-${db.cluster.name}`);
    }
    const forged = new ContextSigner(randomBytes(24).toString('base64url')).encode(A);
    expect(await codeOf(withRawContext(dbs[1]!.appUrl, forged, 'select body from notes'))).toBe('TR001');
    // a pool with the wrong secret gets no further than the raw value did
    const wrong = dbs[1]!.appPool({ contextSecret: randomBytes(24).toString('base64url') });
    expect(await codeOf(runAs(A, () => wrong.query('select body from notes')))).toBe('TR001');
  });

  it('installs several databases on one server at once under the same cluster-wide roles', async () => {
    const cluster = fleet.clusters[0]!;
    const [x, y] = await Promise.all([cluster.createDatabase(), cluster.createDatabase()]);
    for (const db of [x!, y!]) {
      await createNotesTable(db, [[A, `a-in-${db.name}`]]);
      expect((await runAs(A, () => db.appPool().query('select body from notes'))).rows).toEqual([
        { body: `a-in-${db.name}` },
      ]);
      expect((await runAs(B, () => db.appPool().query('select body from notes'))).rowCount).toBe(0);
    }
    await x!.drop();
    const left = await dbs[0]!.admin.query<{ n: number }>(
      'select count(*)::int as n from pg_database where datname = any($1)',
      [[x!.name, y!.name]],
    );
    expect(left.rows[0]!.n).toBe(1);
  });

  // Kept last: it stops the servers the tests above use.
  it('stops every server: no process, port or data directory is left', async () => {
    const embedded = fleet.clusters.filter((c) => c.embedded);
    const pids: number[] = [];
    for (const c of embedded) {
      pids.push(c.pid!);
      const backends = await dbs
        .find((d) => d.cluster === c)!
        .admin.query<{ pid: number }>('select pid from pg_stat_activity');
      pids.push(...backends.rows.map((r) => r.pid));
    }
    expect(pids.length).toBeGreaterThan(embedded.length * 3); // postmaster, checkpointer, walwriter, … per server
    for (const c of embedded) expect(existsSync(c.dataDir!)).toBe(true);
    await fleet.stop();
    expect(pids.filter(alive)).toEqual([]);
    for (const c of embedded) expect(existsSync(c.dataDir!)).toBe(false);
    for (const c of embedded) {
      expect(
        await codeOf(new pg.Client({ connectionString: c.adminUrl, connectionTimeoutMillis: 2000 }).connect()),
      ).toBe('ECONNREFUSED');
    }
  });
});

describe('useTestClusters', () => {
  const fleet = useTestClusters(1, {
    rolePrefix: `tc_${randomBytes(3).toString('hex')}_own`,
    settings: { max_connections: '50' },
  });

  it('starts the clusters before the tests, with the settings and role prefix it was given', async () => {
    const [cluster] = fleet().clusters;
    expect(fleet().roles.app).toMatch(/^tc_[0-9a-f]{6}_own_app$/);
    const db = await cluster!.createDatabase('harness_named_db', { supportRole: true });
    expect([db.name, db.appRole, db.supportUrl !== undefined]).toEqual(['harness_named_db', fleet().roles.app, true]);
    if (cluster!.embedded) {
      expect((await db.admin.query('show max_connections')).rows[0].max_connections).toBe('50');
    }
    await expect(cluster!.createDatabase('Not-A-Name')).rejects.toThrow(/must match/);
  });
});
