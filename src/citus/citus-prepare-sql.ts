import { quoteIdent, quoteLiteral } from '../policy/identifiers.js';
import { INSTALL_LOCK_SQL, type ResolvedInstallOptions } from '../policy/install-sql.js';
import { libraryMigrations } from '../policy/library-migrations.js';

/**
 * Where the Citus step commits and begins again: a context function re-created in the same
 * transaction as the policies of distributed tables that call it is propagated over one worker
 * connection while the shards' policies wait for it over others (a distributed deadlock, seen
 * on a re-install in unsigned mode).
 */
export const CITUS_STEP_COMMIT = '-- tenantry: commit';

/** Library tables the context check reads on every node: reference tables on Citus. */
export const CITUS_REFERENCE_TABLES = [
  'tenantry_private.context_key',
  'tenantry.local_route',
  'tenantry.local_tenants',
  'tenantry.inactive_tenants',
] as const;

/**
 * The SQL of the Citus step (see `prepareCitus`), one statement per line group, every statement
 * idempotent. Why each piece is there:
 *
 * - `citus.propagate_set_commands = 'local'` on the app role: only then does Citus send the
 *   pool's `SET LOCAL tenantry.context` to the workers (the pool sets it per transaction too).
 * - The route-check triggers on `tenantry.local_tenants`, `local_route`, `inactive_tenants` call
 *   `tenantry.choose_route_check()`, which reads `tenantry.meta` (coordinator only): on a
 *   reference table they would fire on the workers. Citus moves tenants itself (shards), so the
 *   tables stay as installed (no tenant is placed elsewhere) and the triggers go.
 * - Reference tables: the signed check (`tenantry.current_tenant_id()`) runs on the workers, in
 *   the shard queries, and reads the key and the local routes there.
 * - The signed functions read those reference tables from inside a shard query: Citus calls that
 *   nested distributed execution and refuses it unless `citus.allow_nested_distributed_execution`
 *   is on for the function (its reads are of reference tables with a placement on every node).
 * - Unsigned mode: the inlined SQL form's `tenantry.refuse_route('moved')` has constant
 *   arguments, which Citus evaluates on the coordinator for every write (TR003): a PL/pgSQL form
 *   (never inlined) keeps the check inside the function.
 * - `tenantry.citus_tenant_table()`: registration and distribution in either order, with the
 *   policy in the form Citus accepts (a plain call, no InitPlan subquery).
 * - The deny-by-default event trigger skips Citus's shards (their parent carries RLS and policy).
 */
export function citusPrepareSql(
  o: Pick<ResolvedInstallOptions, 'appRole' | 'ownerRole' | 'contextMode' | 'eventTrigger'>,
): string {
  const owner = quoteIdent(o.ownerRole);
  const parts: string[] = [];
  const add = (sql: string) => parts.push(sql.trim());
  add(INSTALL_LOCK_SQL);
  // The signed value travels as the text of a SET LOCAL (SET takes no parameter). Sessions of the
  // app role must not read it from each other's statement text: pg_stat_activity (and
  // citus_stat_activity, citus_lock_waits, built on it) shows a backend's query to other sessions
  // of the same role. track_activities is a superuser-only setting: set on the role, the app role
  // cannot turn it back on; Citus propagates ALTER ROLE … SET to the workers, whose connections
  // for the app role show nothing either. pg_stat_statements (track_utility) would keep the SET
  // LOCAL text too, readable by the same role: off for the role (a placeholder where the module
  // is not loaded, taken when it is). All three for this database only: roles are cluster-wide,
  // and two installs of different databases writing the role's cluster-wide settings row at once
  // failed with "tuple concurrently updated" (seen on the cluster); Citus propagates ALTER ROLE …
  // IN DATABASE of the current database.
  add(`DO $do$
BEGIN
  EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I SET citus.propagate_set_commands = ''local''', ${quoteLiteral(o.appRole)}, pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I SET track_activities = off', ${quoteLiteral(o.appRole)}, pg_catalog.current_database());
  EXECUTE pg_catalog.format('ALTER ROLE %I IN DATABASE %I SET pg_stat_statements.track_utility = off', ${quoteLiteral(o.appRole)}, pg_catalog.current_database());
END
$do$;`);
  // Citus's "run this SQL text on the workers" functions are PUBLIC: through them any role runs
  // statements on the workers' own connections, where it can set application_name and the context
  // of another session (the gpid binding does not hold there) and read or change shards directly.
  // Only superusers (and roles an operator grants them to) keep them.
  add(`DO $do$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace
              AND p.proname IN ('run_command_on_workers', 'run_command_on_all_nodes', 'run_command_on_coordinator',
                                'run_command_on_shards', 'run_command_on_placements',
                                'run_command_on_colocated_placements', 'master_run_on_worker', 'citus_run_local_command')
  LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$do$;`);
  // only while still local: Citus refuses even DROP TRIGGER IF EXISTS on a reference table
  add(`DO $do$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'tenantry.local_tenants'::regclass) THEN
    DROP TRIGGER IF EXISTS local_tenants_changed ON tenantry.local_tenants;
    -- core 007's mirror of routes and holds (tenantry_private.context_gate) is not used on Citus:
    -- its signed check reads the reference tables themselves (citusBoundSignedFunction)
    DROP TRIGGER IF EXISTS context_gate_local ON tenantry.local_tenants;
    DROP TRIGGER IF EXISTS context_gate_local_truncate ON tenantry.local_tenants;
  END IF;
  IF to_regclass('tenantry_private.context_key') IS NOT NULL AND NOT EXISTS (
       SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'tenantry_private.context_key'::regclass) THEN
    DROP TRIGGER IF EXISTS context_key_route ON tenantry_private.context_key;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'tenantry.local_route'::regclass) THEN
    DROP TRIGGER IF EXISTS local_route_changed ON tenantry.local_route;
    DROP TRIGGER IF EXISTS context_gate_route ON tenantry.local_route;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = 'tenantry.inactive_tenants'::regclass) THEN
    DROP TRIGGER IF EXISTS inactive_tenants_changed ON tenantry.inactive_tenants;
    DROP TRIGGER IF EXISTS context_gate_hold ON tenantry.inactive_tenants;
    DROP TRIGGER IF EXISTS context_gate_hold_truncate ON tenantry.inactive_tenants;
  END IF;
END
$do$;`);
  for (const table of CITUS_REFERENCE_TABLES)
    add(`SELECT create_reference_table('${table}') WHERE NOT EXISTS (
  SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = '${table}'::regclass);`);
  add(`SET LOCAL ROLE ${owner};`);
  // the routed prefix's route check as core 005 wrote it: reading the tables themselves, not core
  // 007's mirror of them (its triggers are dropped above, so it would not follow them here)
  add(citusCheckRouteSql());
  if (o.contextMode === 'signed') {
    for (const fn of ['current_tenant_id', 'home_tenant_id'] as const) add(citusBoundSignedFunction(fn));
    add(`ALTER FUNCTION tenantry.current_tenant_id() SET citus.allow_nested_distributed_execution = on;`);
    add(`ALTER FUNCTION tenantry.home_tenant_id() SET citus.allow_nested_distributed_execution = on;`);
  } else {
    add(`CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $body$
DECLARE
  v text := pg_catalog.current_setting('tenantry.context', true);
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  IF pg_catalog.strpos(v, '.') > 0 THEN
    PERFORM tenantry.refuse_route('moved');
  END IF;
  RETURN v::uuid;
END
$body$;`);
  }
  add(CITUS_TENANT_TABLE_FUNCTIONS);
  add(CITUS_TENANT_STATUS_CHANGED);
  add(`RESET ROLE;`);
  // before the policies: Citus refuses a function command after parallel DDL on a distributed table
  if (o.eventTrigger) add(CITUS_LOCK_NEW_TABLE);
  add(CITUS_STEP_COMMIT);
  add(INSTALL_LOCK_SQL);
  add(`-- tenant tables distributed before this step: their policies in the plain form
SELECT tenantry.citus_policies(r.relid) FROM tenantry.registered_tables r
 WHERE r.kind = 'tenant' AND EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = r.relid);`);
  return parts.join('\n');
}

/** `tenantry.check_route(text)` as core 005 defines it (the local routes and holds read directly). */
export function citusCheckRouteSql(): string {
  const core005 = libraryMigrations().find((m) => m.feature === 'core' && m.version === 5);
  const template = core005?.template ?? '';
  const start = template.indexOf('CREATE OR REPLACE FUNCTION tenantry.check_route(p_context text)');
  const end = template.indexOf('$fn$;', start);
  if (start < 0 || end < 0) throw new Error('tenantry: core 005 has no tenantry.check_route');
  return template.slice(start, end + '$fn$;'.length);
}

/**
 * What a signed value is bound to in Citus mode: the originating backend's global pid. Citus
 * takes the global pid of a backend whose application_name is `citus_internal gpid=<n>` from
 * that name, which any client may set: on the coordinator (where no worker routes tenant
 * statements) such a backend is bound to nothing a pool signs for. On a worker it is what
 * Citus's own connections look like: keep clients other than the coordinator away from the
 * workers (pg_hba, docs/citus.md).
 */
export const CITUS_CONTEXT_BINDING_SQL = `'.' || CASE WHEN pg_catalog.current_setting('application_name') LIKE 'citus\\_internal%' AND pg_catalog.citus_is_coordinator() THEN 'internal-on-coordinator' ELSE pg_catalog.citus_backend_gpid()::text END`;

/**
 * The signed-mode context function `fn` as the latest core migration's `use_context_mode` makes
 * it, with the signature checked over `<payload>.<citus_backend_gpid()>` instead of `<payload>`.
 *
 * Why: in Citus mode the value travels as the text of a `SET LOCAL` (SET takes no parameter),
 * which `pg_stat_activity` and statement logs show, on the coordinator and on the workers. Bound
 * to the global pid of the backend the pool signed it for (`TenantClient` reads it once per
 * connection), a copy is refused (TR001) in any other session: the workers' connections opened
 * for that backend carry its global pid (Citus puts it in their application_name), any other
 * session has its own.
 */
export function citusBoundSignedFunction(fn: 'current_tenant_id' | 'home_tenant_id'): string {
  // core 005's body: it reads the route and hold tables themselves (reference tables here), not
  // core 007's mirror of them, whose triggers Citus would refuse on reference tables
  const core = libraryMigrations().filter(
    (m) => m.feature === 'core' && m.version <= 5 && m.template.includes('use_context_mode'),
  );
  const template = core[core.length - 1]!.template;
  const signedBranch = template.indexOf(`IF p_mode = 'signed' THEN`);
  const head = `$q$CREATE OR REPLACE FUNCTION tenantry.${fn}()`;
  const start = template.indexOf(head, signedBranch);
  if (signedBranch < 0 || start < 0)
    throw new Error(`tenantry: the signed ${fn}() of the core migrations was not found`);
  const body = template.slice(start + 3, template.indexOf('$q$', start + 3));
  const proof = `convert_to(left(v, length(v) - 65), 'UTF8')`;
  const proofs = body.split(proof).length - 1;
  if (proofs !== 2) throw new Error(`tenantry: the signed ${fn}() has ${proofs} proofs, 2 expected`);
  return `${canonicalFormat(body, fn).replaceAll(proof, `convert_to(left(v, length(v) - 65) || ${CITUS_CONTEXT_BINDING_SQL}, 'UTF8')`)};`;
}

/**
 * Core 005's format check with what core 008 added to it (found by core 008's try-out): the id is
 * the canonical text (holds and routes are looked up by it: an id with its hyphens moved, which
 * uuid_in reads as the same tenant, signed with the secret by a signer that is not Tenantry's,
 * found no hold and no route), followed by its separator; and patterns without backslashes (a
 * session with standard_conforming_strings off when the function is first compiled reads `\.` as
 * any character).
 */
function canonicalFormat(body: string, fn: string): string {
  const format = `v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$' OR substr(v, length(v) - 64, 1) <> '.'`;
  if (body.split(format).length !== 2)
    throw new Error(`tenantry: the signed ${fn}() has no format check where expected`);
  return body.replace(
    format,
    () =>
      `v !~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.][0-9a-f]+$' OR substr(v, length(v) - 64, 1) <> '.' OR substr(v, 37, 1) <> '.'
     OR translate(left(v, 36), '0123456789abcdef', '0000000000000000') <> '00000000-0000-0000-0000-000000000000'`,
  );
}

const CITUS_TENANT_TABLE_FUNCTIONS = `
-- the isolation policies of a tenant table in the form Citus accepts on distributed tables: a
-- plain call (no InitPlan subquery), evaluated on the workers in every shard query; and the
-- support role's read grant. What is already as it should be is left alone: every install and
-- restart runs this, and DDL on a distributed table is propagated to every shard
CREATE OR REPLACE FUNCTION tenantry.citus_policies(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
  support text := (SELECT nullif(value, '') FROM tenantry.meta WHERE key = 'support_role');
  cond text;
BEGIN
  SELECT t.tenant_column, t.pinned INTO r FROM tenantry.registered_tables t WHERE t.relid = tbl AND t.kind = 'tenant';
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: % is not registered as a tenant table', tbl USING ERRCODE = '55000';
  END IF;
  cond := format('%I = tenantry.%s()', r.tenant_column, CASE WHEN r.pinned THEN 'home_tenant_id' ELSE 'current_tenant_id' END);
  IF NOT (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = tbl) THEN
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
  END IF;
  IF NOT (SELECT c.relforcerowsecurity FROM pg_class c WHERE c.oid = tbl) THEN
    EXECUTE format('ALTER TABLE %s FORCE ROW LEVEL SECURITY', tbl);
  END IF;
  IF NOT EXISTS (
    SELECT FROM pg_policy p
     WHERE p.polrelid = tbl AND p.polname = 'tenantry_isolation' AND p.polpermissive AND p.polcmd = '*'
       AND p.polroles = '{0}'::oid[]
       AND pg_get_expr(p.polqual, p.polrelid) = '(' || cond || ')'
       AND pg_get_expr(p.polwithcheck, p.polrelid) = '(' || cond || ')'
  ) THEN
    EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', tbl);
    EXECUTE format('CREATE POLICY tenantry_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)', tbl, cond, cond);
  END IF;
  IF support IS NULL THEN
    EXECUTE format('DROP POLICY IF EXISTS tenantry_support_read ON %s', tbl);
  ELSE
    IF NOT EXISTS (
      SELECT FROM pg_policy p
       WHERE p.polrelid = tbl AND p.polname = 'tenantry_support_read' AND NOT p.polpermissive AND p.polcmd = '*'
         AND p.polroles = ARRAY[(SELECT o.oid FROM pg_roles o WHERE o.rolname = support)]
         AND pg_get_expr(p.polqual, p.polrelid) = 'tenantry.support_read_allowed()'
         AND pg_get_expr(p.polwithcheck, p.polrelid) = 'false'
    ) THEN
      EXECUTE format('DROP POLICY IF EXISTS tenantry_support_read ON %s', tbl);
      EXECUTE format('CREATE POLICY tenantry_support_read ON %s AS RESTRICTIVE FOR ALL TO %I USING (tenantry.support_read_allowed()) WITH CHECK (false)', tbl, support);
    END IF;
    -- read only (a support role added after the table was distributed has no grant yet)
    IF NOT has_table_privilege(support, tbl, 'SELECT')
       OR has_table_privilege(support, tbl, 'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER') THEN
      EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, support);
      EXECUTE format('GRANT SELECT ON %s TO %I', tbl, support);
    END IF;
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.citus_policies(regclass) FROM PUBLIC;

-- registers a tenant table and distributes it by its tenant column, in either order: a table
-- Citus already distributes is registered on the coordinator alone (the registry's InitPlan
-- policy would be refused), then its policies, RLS and grants are made again where Citus
-- propagates them; a local table is registered, given the plain policies, then distributed
-- (colocated with colocate_with, or with Citus's default group of its column type). A Citus
-- local table (what create_reference_table makes of a table that references it) is distributed
-- too: Citus makes it again under a new oid, and the dropped one's registry row is put back
CREATE OR REPLACE FUNCTION tenantry.citus_tenant_table(tbl regclass, tenant_column name DEFAULT 'tenant_id', colocate_with regclass DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  app text := (SELECT value FROM tenantry.meta WHERE key = 'app_role');
  support text := (SELECT nullif(value, '') FROM tenantry.meta WHERE key = 'support_role');
  -- a Citus local table (method n, model s) is not distributed yet
  distributed boolean := EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = tbl
                                   AND NOT (p.partmethod = 'n' AND p.repmodel = 's'));
  propagate text := current_setting('citus.enable_ddl_propagation');
  qualified text := tbl::text;
  pinned boolean;
BEGIN
  IF distributed THEN
    -- the index first, where Citus propagates it (register_tenant_table then finds it)
    IF NOT EXISTS (
      SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
       WHERE i.indrelid = tbl AND a.attname = tenant_column AND i.indisvalid AND i.indpred IS NULL
    ) THEN
      EXECUTE format('CREATE INDEX ON %s (%I)', tbl, tenant_column);
    END IF;
    PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    PERFORM tenantry.register_tenant_table(tbl, tenant_column);
    PERFORM set_config('citus.enable_ddl_propagation', propagate, true);
    PERFORM tenantry.citus_policies(tbl);
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
    EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, app);
    IF support IS NOT NULL THEN
      EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, support);
      EXECUTE format('GRANT SELECT ON %s TO %I', tbl, support);
    END IF;
  ELSE
    -- a Citus local table: the registry's InitPlan policy on the coordinator's table alone (its
    -- shard refuses it), replaced by the plain one below
    IF EXISTS (SELECT FROM pg_dist_partition p WHERE p.logicalrelid = tbl) THEN
      -- the index first, where Citus propagates it (as for a distributed table)
      IF NOT EXISTS (
        SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = tbl AND a.attname = tenant_column AND i.indisvalid AND i.indpred IS NULL
      ) THEN
        EXECUTE format('CREATE INDEX ON %s (%I)', tbl, tenant_column);
      END IF;
      PERFORM set_config('citus.enable_ddl_propagation', 'off', true);
    END IF;
    PERFORM tenantry.register_tenant_table(tbl, tenant_column);
    PERFORM set_config('citus.enable_ddl_propagation', propagate, true);
    PERFORM tenantry.citus_policies(tbl);
    pinned := (SELECT r.pinned FROM tenantry.registered_tables r WHERE r.relid = tbl);
    IF colocate_with IS NULL THEN
      PERFORM create_distributed_table(tbl, tenant_column::text);
    ELSE
      PERFORM create_distributed_table(tbl, tenant_column::text, colocate_with => colocate_with::text);
    END IF;
    -- a Citus local table was made again (new oid): the event trigger took its registry row out
    INSERT INTO tenantry.registered_tables (relid, kind, tenant_column, writable, pinned)
    VALUES (qualified::regclass, 'tenant', tenant_column, true, pinned)
    ON CONFLICT (relid) DO NOTHING;
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.citus_tenant_table(regclass, name, regclass) FROM PUBLIC;`;

/**
 * Core 005's hold trigger on tenantry.tenants, with `updated_at = excluded.updated_at` (the
 * column's default, evaluated for the proposed row) instead of `now()`: inactive_tenants is a
 * reference table on Citus, which refuses a non-IMMUTABLE function in the DO UPDATE SET clause
 * of an INSERT (0A000; `tenantry tenants suspend` failed with it). Same effect on PostgreSQL.
 */
const CITUS_TENANT_STATUS_CHANGED = `
CREATE OR REPLACE FUNCTION tenantry.tenant_status_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO tenantry.inactive_tenants (tenant_key, status) VALUES (OLD.id::text, 'deleted')
    ON CONFLICT (tenant_key) DO UPDATE SET status = 'deleted', updated_at = excluded.updated_at;
  ELSIF NEW.status = 'active' THEN
    DELETE FROM tenantry.inactive_tenants WHERE tenant_key = NEW.id::text;
  ELSE
    INSERT INTO tenantry.inactive_tenants (tenant_key, status) VALUES (NEW.id::text, NEW.status)
    ON CONFLICT (tenant_key) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at;
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.tenant_status_changed() FROM PUBLIC;`;

const CITUS_LOCK_NEW_TABLE = `
CREATE OR REPLACE FUNCTION tenantry.lock_new_table() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
            WHERE object_type IN ('table', 'partitioned table') AND schema_name NOT LIKE 'pg\\_temp%' LOOP
    -- Citus's own shards (created here when the coordinator holds placements, and by splits and
    -- moves): their Citus table carries the RLS and policies Citus gives them
    CONTINUE WHEN pg_catalog.relation_is_a_known_shard(r.objid)
               OR EXISTS (SELECT FROM pg_catalog.pg_dist_partition p JOIN pg_catalog.pg_class c ON c.oid = p.logicalrelid
                           WHERE c.relnamespace = (SELECT x.relnamespace FROM pg_catalog.pg_class x WHERE x.oid = r.objid)
                             AND c.relname = regexp_replace((SELECT x.relname FROM pg_catalog.pg_class x WHERE x.oid = r.objid), '_[0-9]+$', ''));
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', r.object_identity);
  END LOOP;
END
$fn$;`;
