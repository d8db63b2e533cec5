import pg from 'pg';

/**
 * TENANTRY_CITUS=1: the reference server's tables on a Citus coordinator, in the order Citus
 * accepts (docs/citus.md, "The mapping"; verified on Citus 13.2.2). Run as a superuser after
 * `tenantry install --citus` and the app migrations; idempotent (a table already distributed is
 * left as it is).
 *
 * - The tenant tables' policies in the plain form first: `create_reference_table` converts the
 *   tables connected to it by foreign keys, and refuses their InitPlan policies.
 * - `app_private.users` (global: one person, many tenants) becomes a reference table.
 * - `recordings` references `members`: a local table may not reference a distributed one, so the
 *   key is dropped while `members` is distributed and added back once both are.
 * - The row triggers on `recordings` (live events, the library's row metering) would run on the
 *   workers, on the shards, and write to tables that are not there (42P01): they are dropped.
 *   On Citus the server has no per-row write metering, and its recording routes publish the live
 *   events after each write commits instead (`buildServer({ citus: true })`, docs/citus.md).
 * - `create_reference_table('app_private.users')` makes Citus local tables of `members` and
 *   `recordings` (connected to it by foreign keys); `create_distributed_table` then makes each of
 *   them again as a new table (a new oid), and the library's event trigger takes the dropped one
 *   out of `tenantry.registered_tables`. Their registry rows are put back under the new oid (as
 *   they were before; `members` pinned) and the policies checked (`tenantry.citus_policies`):
 *   found missing after the support-role step of a re-install skipped them.
 * - The plugins' tenant tables (and any other registered tenant table outside the library's
 *   schemas) are distributed the same way, colocated with `members`, so `doctor --citus` is clean.
 */
export async function distributeAppTables(adminUrl: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'tenantry app citus' });
  await client.connect();
  const done: string[] = [];
  // hash-distributed; a reference table is method n, replication model t (a Citus local table,
  // which create_reference_table makes of the tables connected to it, is method n, model s)
  const distributed = async (table: string) =>
    (
      await client.query(
        `SELECT 1 FROM pg_dist_partition WHERE logicalrelid = $1::regclass AND (partmethod = 'h' OR (partmethod = 'n' AND repmodel = 't'))`,
        [table],
      )
    ).rowCount !== 0;
  try {
    const { rows } = await client.query<{ owner: string }>(
      `SELECT value AS owner FROM tenantry.meta WHERE key = 'owner_role'`,
    );
    const owner = rows[0]?.owner;
    if (!owner) throw new Error('tenantry is not installed in this database (tenantry install --citus first)');
    const tenantTables = ['public.members', 'public.recordings', 'public.tenant_event_streams', 'public.tenant_events'];
    // the registry as the app migrations left it (members pinned: app/migrations/006_tiers.sql)
    const registered = new Map<string, { tenantColumn: string; pinned: boolean }>(
      tenantTables.map((t) => [t, { tenantColumn: 'tenant_id', pinned: t === 'public.members' }]),
    );
    for (const r of (
      await client.query<{ t: string; tenant_column: string; pinned: boolean }>(
        `SELECT relid::regclass::text AS t, tenant_column, pinned FROM tenantry.registered_tables
          WHERE kind = 'tenant' AND relid = ANY ($1::regclass[])`,
        [tenantTables],
      )
    ).rows)
      registered.set(r.t.includes('.') ? r.t : `public.${r.t}`, { tenantColumn: r.tenant_column, pinned: r.pinned });
    if (!(await distributed('public.recordings'))) {
      await client.query('DROP TRIGGER IF EXISTS recordings_emit_events ON public.recordings');
      await client.query('DROP TRIGGER IF EXISTS tenantry_meter_insert ON public.recordings');
      await client.query('DROP TRIGGER IF EXISTS tenantry_meter_update ON public.recordings');
      await client.query('DROP TRIGGER IF EXISTS tenantry_meter_delete ON public.recordings');
    }
    await client.query('BEGIN');
    await client.query(`SELECT set_config('role', $1, true)`, [owner]);
    for (const t of tenantTables)
      if (!(await distributed(t))) await client.query(`SELECT tenantry.citus_policies($1::regclass)`, [t]);
    await client.query('COMMIT');
    if (!(await distributed('app_private.users'))) {
      await client.query(`SELECT create_reference_table('app_private.users')`);
      done.push('app_private.users');
    }
    if (!(await distributed('public.recordings')) || !(await distributed('public.members'))) {
      await client.query(`ALTER TABLE public.recordings DROP CONSTRAINT IF EXISTS recordings_tenant_id_owner_id_fkey`);
      for (const t of tenantTables)
        if (!(await distributed(t))) {
          // also a Citus local table (create_reference_table made it one): distributed, colocated with members
          await client.query(
            t === 'public.members'
              ? `SELECT create_distributed_table('public.members', 'tenant_id')`
              : `SELECT create_distributed_table($1, 'tenant_id', colocate_with => 'public.members')`,
            t === 'public.members' ? [] : [t],
          );
          done.push(t);
        }
      await client.query(
        `ALTER TABLE public.recordings ADD CONSTRAINT recordings_tenant_id_owner_id_fkey FOREIGN KEY (tenant_id, owner_id) REFERENCES public.members (tenant_id, user_id)`,
      );
    }
    // the plugins' tenant tables (app/plugins: transcripts, webhook_*; their migrations ran with
    // the home database's data migrations): every other registered tenant table outside the
    // library's schemas, colocated with members. They have no triggers and no foreign keys, and
    // stay the same table (a plain local table keeps its oid when distributed).
    const others = (
      await client.query<{ t: string; column: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS t, r.tenant_column AS column FROM tenantry.registered_tables r
           JOIN pg_class c ON c.oid = r.relid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE r.kind = 'tenant' AND n.nspname NOT IN ('tenantry', 'tenantry_private')
            AND r.relid <> ALL ($1::regclass[]) ORDER BY 1`,
        [tenantTables],
      )
    ).rows;
    for (const { t, column } of others)
      if (!(await distributed(t))) {
        await client.query('BEGIN');
        await client.query(`SELECT set_config('role', $1, true)`, [owner]);
        await client.query(`SELECT tenantry.citus_policies($1::regclass)`, [t]);
        await client.query('COMMIT');
        await client.query(`SELECT create_distributed_table($1, $2, colocate_with => 'public.members')`, [t, column]);
        done.push(t);
      }
    // tables Citus made again under a new oid (above; or by an earlier version of this step) are
    // registered again, as they were
    await client.query('BEGIN');
    for (const [t, r] of registered) {
      const { rowCount } = await client.query(
        `INSERT INTO tenantry.registered_tables (relid, kind, tenant_column, writable, pinned)
         VALUES ($1::regclass, 'tenant', $2, true, $3) ON CONFLICT (relid) DO NOTHING`,
        [t, r.tenantColumn, r.pinned],
      );
      if (rowCount !== 0) {
        await client.query(`SELECT set_config('role', $1, true)`, [owner]);
        await client.query(`SELECT tenantry.citus_policies($1::regclass)`, [t]);
        await client.query('RESET ROLE');
      }
    }
    await client.query('COMMIT');
    return done;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
