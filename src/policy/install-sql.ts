import { quoteIdent, quoteLiteral } from './identifiers.js';
import { resolveInstallOptions, type InstallOptions, type ResolvedInstallOptions } from './install-options.js';
import { libraryMigrations, migrationLabel, renderMigration, type LibraryMigration } from './library-migrations.js';

export {
  DEFAULT_APP_ROLE_TIMEOUTS,
  resolveInstallOptions,
  type AppRoleTimeouts,
  type ContextMode,
  type InstallOptions,
  type ResolvedInstallOptions,
} from './install-options.js';

/** The GUC that carries the tenant context, transaction-locally. */
export const CONTEXT_SETTING = 'tenantry.context';

/** The advisory lock every install transaction takes first: installs of one database run one at a time. */
export const INSTALL_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtext('tenantry.install'));`;

/**
 * The signed-mode `tenantry.current_tenant_id()` as the latest core migration defines it, or as
 * core migration `version` did (for the benchmark study, not part of the API).
 */
export function signedContextFunctionSql(version?: number): string {
  const core = libraryMigrations().filter(
    (m) => m.feature === 'core' && m.template.includes('use_context_mode') && (version ?? m.version) === m.version,
  );
  const template = core[core.length - 1]!.template;
  // the signed branch of use_context_mode(): core 005 also holds unsigned mode's checking form
  // (choose_route_check) earlier in the file, which a plain search would pick
  const signed = template.indexOf("IF p_mode = 'signed' THEN", template.indexOf('FUNCTION tenantry.use_context_mode'));
  if (signed < 0) throw new Error('signedContextFunctionSql: no signed branch in the migration');
  const start = template.indexOf('$q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id()', signed);
  return `${template.slice(start + 3, template.indexOf('$q$', start + 3))};`;
}

/**
 * Refuses (SQLSTATE TRI01, see NewerSchemaError) to go on when the database records a library
 * migration this version does not know: a newer Tenantry installed it, and this version's steps
 * would put back older bodies of functions it re-creates. Runs in the roles and grants steps
 * after the install lock, so a newer install that commits meanwhile is seen too.
 */
export function newerSchemaGuardSql(): string {
  const known = libraryMigrations().map((m) => quoteLiteral(`${m.feature}/${m.version}`));
  return `DO $guard$
BEGIN
  -- nested: the inner statement is planned only once the table is known to exist
  IF to_regclass('tenantry.library_migrations') IS NOT NULL THEN
    IF EXISTS (SELECT FROM tenantry.library_migrations m
                WHERE m.feature || '/' || m.version <> ALL (ARRAY[${known.join(', ')}])) THEN
      RAISE EXCEPTION 'tenantry: this database was installed by a newer Tenantry version: nothing changed'
        USING ERRCODE = 'TRI01', HINT = 'install with that version or a newer one';
    END IF;
  END IF;
END
$guard$;`;
}

/** A dollar-quoted literal of `text` (which must not contain the tag). */
function quoteDollar(text: string): string {
  if (text.includes('$q$')) throw new Error('quoteDollar: the text contains the tag');
  return `$q$${text}$q$`;
}

/**
 * The whole SQL of a first `tenantry install`, as one transaction: the roles step, every library
 * migration (each recorded in `tenantry.library_migrations`), then the grants step. What
 * {@link install} runs in steps (each migration in its own transaction, only the pending ones),
 * printed in one piece: for review, and for databases a script must set up. Passwords appear
 * when given; the context secret never does.
 */
export function installSql(input: InstallOptions = {}): string {
  const o = resolveInstallOptions(input);
  return [
    'BEGIN;',
    rolesStepSql(o),
    ...libraryMigrations().map((m) => migrationStepSql(m, o)),
    grantsStepSql(o),
    'COMMIT;',
    '',
  ].join('\n');
}

/** One migration as `install` runs it: as the owner role, then recorded. */
export function migrationStepSql(
  m: LibraryMigration,
  o: Pick<ResolvedInstallOptions, 'appRole' | 'ownerRole'>,
): string {
  return [
    `-- migration ${migrationLabel(m)}`,
    `SET LOCAL ROLE ${quoteIdent(o.ownerRole)};`,
    renderMigration(m, o).trim(),
    `INSERT INTO tenantry.library_migrations (feature, version, name, checksum) VALUES (${quoteLiteral(m.feature)}, ${m.version}, ${quoteLiteral(m.name)}, ${quoteLiteral(m.checksum)}) ON CONFLICT (feature, version) DO NOTHING;`,
    `RESET ROLE;`,
  ].join('\n');
}

/**
 * The roles step, run by every install before the migrations (and not itself a migration: roles
 * and passwords are cluster-wide, role names and data schemas are the deployment's): the login
 * roles, the database and schema privileges, `tenantry.meta` with the options of this install,
 * and the version table of the library's migrations. Idempotent.
 */
export function rolesStepSql(o: ResolvedInstallOptions): string {
  const app = quoteIdent(o.appRole);
  const owner = quoteIdent(o.ownerRole);
  const support = o.supportRole === undefined ? undefined : quoteIdent(o.supportRole);
  const router = quoteIdent(o.routerRole);
  const lines: string[] = [];
  const add = (sql: string) => lines.push(sql.trim());
  const loginRole = 'NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION NOINHERIT';
  const loginExpected = {
    rolsuper: false,
    rolbypassrls: false,
    rolcreaterole: false,
    rolcreatedb: false,
    rolreplication: false,
    rolinherit: false,
  };

  add(`-- tenantry install: roles step (context mode: ${o.contextMode})`);
  add(INSTALL_LOCK_SQL);
  add(`-- a database a newer Tenantry installed is left alone (this version would downgrade its functions)`);
  add(newerSchemaGuardSql());
  add(`-- the owner runs DDL and the control plane (it may bypass RLS); the app owns nothing and never bypasses`);
  add(
    roleSql(o.ownerRole, 'NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB', {
      rolsuper: false,
      rolbypassrls: true,
      rolcreaterole: false,
      rolcreatedb: false,
    }),
  );
  add(roleSql(o.appRole, loginRole, loginExpected));
  if (o.ownerPassword !== undefined) add(`ALTER ROLE ${owner} PASSWORD ${quoteLiteral(o.ownerPassword)};`);
  if (o.appPassword !== undefined) add(`ALTER ROLE ${app} PASSWORD ${quoteLiteral(o.appPassword)};`);
  if (o.supportRole !== undefined && support !== undefined) {
    add(
      `-- the support role reads (never writes) one tenant at a time, under the same policies, while a staff grant is open`,
    );
    add(roleSql(o.supportRole, loginRole, loginExpected));
    if (o.supportPassword !== undefined) add(`ALTER ROLE ${support} PASSWORD ${quoteLiteral(o.supportPassword)};`);
    add(
      `DO $do$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${support}', current_database()); EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM ${support}', current_database()); END $do$;`,
    );
  }
  add(
    `-- the router reads where tenants live (tenantry.route_of, tenantry.routes_since: EXECUTE in the grants step) and nothing else`,
  );
  add(roleSql(o.routerRole, loginRole, loginExpected));
  if (o.routerPassword !== undefined) add(`ALTER ROLE ${router} PASSWORD ${quoteLiteral(o.routerPassword)};`);
  add(
    `DO $do$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${router}', current_database()); EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM ${router}', current_database()); END $do$;`,
  );
  add(`
DO $do$
BEGIN
  EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${app}', current_database());
  -- temporary objects live first on the search path: a temp table or view named like a tenant
  -- table, planted by injected SQL, would capture the next borrower's rows
  EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC, ${app}', current_database());
  EXECUTE format('GRANT CONNECT, CREATE ON DATABASE %I TO ${owner}', current_database());
END
$do$;`);

  add(`-- data schemas: the owner creates, the app only uses; nobody else creates`);
  for (const schema of o.dataSchemas) {
    const s = quoteIdent(schema);
    add(`CREATE SCHEMA IF NOT EXISTS ${s};`);
    add(`REVOKE CREATE ON SCHEMA ${s} FROM PUBLIC;`);
    add(`REVOKE ALL ON SCHEMA ${s} FROM ${app};`);
    add(`GRANT USAGE ON SCHEMA ${s} TO ${app};`);
    if (support) add(`GRANT USAGE ON SCHEMA ${s} TO ${support};`);
    add(`GRANT USAGE, CREATE ON SCHEMA ${s} TO ${owner};`);
  }

  add(`-- deny by default: new tables and functions of the owner grant nothing to anyone`);
  add(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} REVOKE ALL ON TABLES FROM PUBLIC;`);
  add(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} REVOKE ALL ON SEQUENCES FROM PUBLIC;`);
  add(`ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;`);

  add(`CREATE SCHEMA IF NOT EXISTS tenantry AUTHORIZATION ${owner};`);
  add(`CREATE SCHEMA IF NOT EXISTS tenantry_private AUTHORIZATION ${owner};`);
  add(`ALTER SCHEMA tenantry OWNER TO ${owner};`);
  add(`ALTER SCHEMA tenantry_private OWNER TO ${owner};`);
  add(`REVOKE ALL ON SCHEMA tenantry, tenantry_private FROM PUBLIC;`);
  add(`REVOKE ALL ON SCHEMA tenantry_private FROM ${app};`);
  add(`GRANT USAGE ON SCHEMA tenantry TO ${app};`);
  if (support) add(`GRANT USAGE ON SCHEMA tenantry TO ${support};`);
  add(`REVOKE ALL ON SCHEMA tenantry_private FROM ${router};`);
  add(`GRANT USAGE ON SCHEMA tenantry TO ${router};`);

  add(`-- the install's options, read by the migrations and the functions (owned by the owner role)`);
  add(`SET LOCAL ROLE ${owner};`);
  add(`
CREATE TABLE IF NOT EXISTS tenantry.meta (
  key text PRIMARY KEY,
  value text NOT NULL
);`);
  add(`
INSERT INTO tenantry.meta (key, value) VALUES
  ('app_role', ${quoteLiteral(o.appRole)}),
  ('owner_role', ${quoteLiteral(o.ownerRole)}),
  ('support_role', ${quoteLiteral(o.supportRole ?? '')}),
  ('router_role', ${quoteLiteral(o.routerRole)}),
  ('context_mode', ${quoteLiteral(o.contextMode)}),
  ('data_schemas', ${quoteLiteral(o.dataSchemas.join(','))})
ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE tenantry.meta.value IS DISTINCT FROM excluded.value;`);
  add(`-- the version table of the library's own schema: one row per migration applied here`);
  add(`
CREATE TABLE IF NOT EXISTS tenantry.library_migrations (
  feature text NOT NULL CHECK (feature ~ '^[a-z][a-z0-9_]{0,62}$'),
  version integer NOT NULL CHECK (version > 0),
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (feature, version)
);`);
  // stated here, not left to the event trigger: it exists when an older install is upgraded, not
  // on a first install (a table a migration creates states its RLS for the same reason)
  add(`ALTER TABLE tenantry.library_migrations ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`);
  add(`REVOKE ALL ON tenantry.meta, tenantry.library_migrations FROM PUBLIC, ${app};`);
  add(`RESET ROLE;`);
  return lines.join('\n');
}

/**
 * The grants step, run by every install after the migrations: the context functions of the
 * recorded mode, what the support role may use, the event trigger, the app role's timeouts.
 * Idempotent.
 */
export function grantsStepSql(o: ResolvedInstallOptions, { citus = false }: { citus?: boolean } = {}): string {
  const owner = quoteIdent(o.ownerRole);
  const support = o.supportRole === undefined ? undefined : quoteIdent(o.supportRole);
  const lines: string[] = [];
  const add = (sql: string) => lines.push(sql.trim());
  add(`-- tenantry install: grants step`);
  add(INSTALL_LOCK_SQL);
  add(newerSchemaGuardSql());
  add(`SET LOCAL ROLE ${owner};`);
  add(`SELECT tenantry.use_context_mode(${quoteLiteral(o.contextMode)});`);
  if (support) {
    add(`REVOKE ALL ON tenantry.local_tenants, tenantry.local_route FROM ${support};`);
    add(
      `GRANT EXECUTE ON FUNCTION tenantry.refuse_route(text), tenantry.check_route(text), tenantry.enter_route(text, text), tenantry.current_tenant_id(), tenantry.home_tenant_id(), tenantry.is_moving(), tenantry.support_read_allowed() TO ${support};`,
    );
    add(`-- tables registered before the support role existed get its grant and policy now`);
    if (citus)
      // a distributed table keeps the policies in the form Citus accepts (no InitPlan subquery:
      // register_tenant_table's would fail there): the Citus step gives it the support role's
      add(
        `SELECT tenantry.register_tenant_table(r.relid, r.tenant_column) FROM tenantry.registered_tables r WHERE r.kind = 'tenant'
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = r.relid);`,
      );
    else
      add(
        `SELECT tenantry.register_tenant_table(r.relid, r.tenant_column) FROM tenantry.registered_tables r WHERE r.kind = 'tenant';`,
      );
  }
  add(`-- routes (where each tenant lives) are the router role's alone: tiers/002 took them from the app role (and`);
  add(`-- every install does again: tiers/001 run again after its record was lost would give them back)`);
  add(
    `REVOKE ALL ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) FROM PUBLIC, ${quoteIdent(o.appRole)};`,
  );
  add(
    `GRANT EXECUTE ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) TO ${quoteIdent(o.routerRole)};`,
  );
  add(`-- readers of an install of before the versioned schema: its digest means nothing now`);
  add(`DELETE FROM tenantry.meta WHERE key IN ('version', 'install_digest');`);
  add(`RESET ROLE;`);
  if (o.appRoleTimeouts) {
    add(`-- bounded waits: the app role's statements, lock waits and idle transactions end on their own`);
    for (const t of o.appRoleTimeouts) add(timeoutSql(o.appRole, t.setting, t.value, t.force));
  }
  add(`-- least privilege: no large objects created and no session signalled through PUBLIC's EXECUTE (doctor:`);
  add(`-- APP_CAN_CREATE_LARGE_OBJECTS, APP_CAN_SIGNAL_SESSIONS); only a superuser may revoke them`);
  add(LEAST_PRIVILEGE);
  if (o.eventTrigger) {
    add(`-- deny by default, second wall: every new table starts with RLS forced and no policy`);
    add(EVENT_TRIGGER);
  }
  return lines.join('\n');
}

/**
 * What PUBLIC may EXECUTE in pg_catalog that a tenant's injected SQL could abuse: creating large
 * objects (storage outside every table and policy) and cancelling or terminating sibling sessions
 * of the same role (other tenants' requests). The protocol-level cancel request the pools send is
 * not a function call and is unaffected. An application that needs either grants it to its own
 * role explicitly. Per database; skipped (and reported by doctor) when not run as a superuser.
 */
const LEAST_PRIVILEGE = `
DO $do$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    REVOKE EXECUTE ON FUNCTION pg_catalog.lo_create(oid), pg_catalog.lo_creat(integer),
                               pg_catalog.lo_from_bytea(oid, bytea) FROM PUBLIC;
    REVOKE EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer),
                               pg_catalog.pg_terminate_backend(integer, bigint) FROM PUBLIC;
  END IF;
END
$do$;`;

/** `ALTER ROLE … SET` of one timeout: always when forced, otherwise only where the role has no value of its own yet. */
function timeoutSql(role: string, setting: string, value: string, force: boolean): string {
  const alter = `ALTER ROLE ${quoteIdent(role)} SET ${setting} = ${quoteLiteral(value)}`;
  if (force) return `${alter};`;
  return `
DO $do$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                  WHERE r.rolname = ${quoteLiteral(role)} AND s.setdatabase = 0
                    AND EXISTS (SELECT FROM unnest(s.setconfig) c WHERE c LIKE ${quoteLiteral(`${setting}=%`)})) THEN
    EXECUTE ${quoteDollar(alter)};
  END IF;
END
$do$;`;
}

const EVENT_TRIGGER = `
CREATE OR REPLACE FUNCTION tenantry.lock_new_table() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM pg_event_trigger_ddl_commands()
            WHERE object_type IN ('table', 'partitioned table') AND schema_name NOT LIKE 'pg\\_temp%' LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', r.object_identity);
  END LOOP;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.lock_new_table() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS tenantry_lock_new_table;
CREATE EVENT TRIGGER tenantry_lock_new_table ON ddl_command_end
  WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
  EXECUTE FUNCTION tenantry.lock_new_table();

-- a dropped table leaves the registry at once (its oid could be reused by an unrelated table)
-- SECURITY DEFINER: it fires for every role's DROP (an app's temp table too), and only the
-- owner may write the registry
CREATE OR REPLACE FUNCTION tenantry.forget_dropped_table() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  DELETE FROM tenantry.registered_tables r
   USING pg_event_trigger_dropped_objects() d
   WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND r.relid::oid = d.objid;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.forget_dropped_table() FROM PUBLIC;
DROP EVENT TRIGGER IF EXISTS tenantry_forget_dropped_table;
CREATE EVENT TRIGGER tenantry_forget_dropped_table ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
  EXECUTE FUNCTION tenantry.forget_dropped_table();`;

/** Creates a login role when missing and sets its attributes only when they differ (concurrent installs then write nothing). */
function roleSql(role: string, attributes: string, expected: Record<string, boolean>): string {
  const checks = Object.entries(expected)
    .map(([k, v]) => `${v ? '' : 'NOT '}${k}`)
    .join(' AND ');
  return `
DO $do$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)}) THEN
    BEGIN
      CREATE ROLE ${quoteIdent(role)} LOGIN ${attributes};
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${quoteLiteral(role)} AND rolcanlogin AND ${checks}) THEN
    ALTER ROLE ${quoteIdent(role)} LOGIN ${attributes};
  END IF;
END
$do$;`;
}
