import { createHash } from 'node:crypto';
import { homeTenantFunctionSql, NO_CONTEXT_KEY, SIGNED_FORMAT_CHECK, SIGNED_PROOF_CHECK } from './home-tenant-sql.js';
import { identitySql } from '../identity/identity-sql.js';
import { pendingIdentitySql } from '../identity/pending/pending-identity-sql.js';
import { localRouteSql, placementSql } from '../tiers/placement-sql.js';
import { migrateSql } from '../tiers/migrate/migrate-sql.js';
import { moveSql } from '../tiers/move/move-sql.js';
import { quoteIdent, quoteLiteral, validIdentifier } from './identifiers.js';

/** How policies trust the tenant context value. See docs/security.md. */
export type ContextMode = 'signed' | 'unsigned';

/** Options of `tenantry install`. Every name is validated before it reaches SQL. */
export interface InstallOptions {
  /** Role the application connects as: owns nothing, NOSUPERUSER, NOBYPASSRLS. Default `tenantry_app`. */
  appRole?: string;
  /** Role that owns tables and runs DDL (migrations, control plane). Default `tenantry_owner`. */
  ownerRole?: string;
  /**
   * Read-only role for audited cross-tenant support reads (`StaffAccess.read`): NOSUPERUSER,
   * NOBYPASSRLS, SELECT on tenant tables only, and only on a tenant some staff member holds an
   * open `read` grant on. Not created when omitted.
   */
  supportRole?: string;
  /** Passwords for the login roles; left unchanged when omitted. */
  appPassword?: string;
  ownerPassword?: string;
  supportPassword?: string;
  /** Schemas holding application tables. Default `['public']`. */
  dataSchemas?: string[];
  /** `signed` (default): the context carries an HMAC PostgreSQL verifies. `unsigned`: a bare uuid, faster, forgeable by injected SQL. */
  contextMode?: ContextMode;
  /** Install the event trigger that locks every new table (needs superuser). Default true. */
  eventTrigger?: boolean;
}

/** Resolved install options with defaults applied and names validated. */
export interface ResolvedInstallOptions {
  appRole: string;
  ownerRole: string;
  supportRole: string | undefined;
  appPassword: string | undefined;
  ownerPassword: string | undefined;
  supportPassword: string | undefined;
  dataSchemas: string[];
  contextMode: ContextMode;
  eventTrigger: boolean;
}

/**
 * Version of the objects `installSql` creates; stored in `tenantry.meta` (key `version`). Kept for
 * readers of that row: an install's SQL is told apart by {@link installDigest}, which changes with
 * every change of the SQL without anyone bumping a number.
 */
export const INSTALL_VERSION = '2';

/** The GUC that carries the tenant context, transaction-locally. */
export const CONTEXT_SETTING = 'tenantry.context';

/** Applies defaults and validates every identifier. */
export function resolveInstallOptions(options: InstallOptions = {}): ResolvedInstallOptions {
  const appRole = validIdentifier(options.appRole ?? 'tenantry_app', 'app role');
  const ownerRole = validIdentifier(options.ownerRole ?? 'tenantry_owner', 'owner role');
  if (appRole === ownerRole) throw new Error('The app role and the owner role must differ');
  const supportRole =
    options.supportRole === undefined ? undefined : validIdentifier(options.supportRole, 'support role');
  if (supportRole !== undefined && (supportRole === appRole || supportRole === ownerRole))
    throw new Error('The support role must differ from the app and owner roles');
  return {
    appRole,
    ownerRole,
    supportRole,
    appPassword: options.appPassword,
    ownerPassword: options.ownerPassword,
    supportPassword: options.supportPassword,
    dataSchemas: (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema')),
    contextMode: options.contextMode ?? 'signed',
    eventTrigger: options.eventTrigger ?? true,
  };
}

/**
 * The route check both context functions end with (plpgsql): `k` holds the tenant's local row
 * (state, epoch) and the database's serves_default, `route` the epoch the statement was sent on.
 */
const ROUTE_CHECK = `  IF k.state IS NULL THEN
    IF route <> 0 OR NOT k.serves_default THEN
      PERFORM tenantry.refuse_route('moved');
    END IF;
  ELSIF k.state <> 'active' OR k.epoch <> route THEN
    PERFORM tenantry.refuse_route(k.state);
  END IF;`;

/** The signed-mode policy function (exported for the benchmark study, not part of the API). */
export const SIGNED_CONTEXT_FUNCTION = `
-- Signed mode: the context is '<tenant uuid>.<expiry epoch>[.<route epoch>].<hex HMAC-SHA256>'
-- signed with a key the app role cannot read. Injected SQL can set the setting, but not forge a
-- valid value. The route epoch (absent: 0, the default route) must match where the tenant lives
-- in this database (tenantry.local_tenants): a stale router fails with TR003, a frozen tenant TR004.
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v text := current_setting('${CONTEXT_SETTING}', true);
  k record;
  route bigint;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
${SIGNED_FORMAT_CHECK}
  -- one lookup for the key and for this tenant's local route (text key: no cast of unproven input)
  SELECT c.ipad, c.opad, l.state, l.epoch, r.serves_default INTO k
    FROM tenantry_private.context_key c CROSS JOIN tenantry.local_route r
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(v, 36);
${NO_CONTEXT_KEY}
${SIGNED_PROOF_CHECK}
  route := CASE WHEN split_part(v, '.', 4) = '' THEN 0 ELSE split_part(v, '.', 3)::bigint END;
${ROUTE_CHECK}
  RETURN left(v, 36)::uuid;
END
$fn$;`;

/**
 * Unsigned mode, fast form: inlined into each statement (no lookup). Used while this database
 * serves only the default route (no tenantry.local_tenants row, serves_default): a context that
 * names a route epoch is then refused as it would be by the checking form.
 */
const UNSIGNED_FAST_BODY = `CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT CASE WHEN strpos(current_setting('${CONTEXT_SETTING}', true), '.') > 0 THEN tenantry.refuse_route('moved')
              ELSE nullif(current_setting('${CONTEXT_SETTING}', true), '')::uuid END
$body$`;

/**
 * Unsigned mode, checking form: once a tenant is placed here (or this database stops serving the
 * default route), each statement looks its tenant up in tenantry.local_tenants (a plpgsql plan
 * cached per session): a stale route fails with TR003, a frozen tenant with TR004.
 */
const UNSIGNED_CHECKING_BODY = `CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $body$
DECLARE
  v text := pg_catalog.current_setting('${CONTEXT_SETTING}', true);
  tid text;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  tid := pg_catalog.split_part(v, '.', 1);
  PERFORM tenantry.check_route(v);
  RETURN tid::uuid;
END
$body$`;

/**
 * The route check on its own (SECURITY DEFINER: the app role reads nothing of where tenants
 * live), and the prefix of a RoutedTenantPool's statements: enter_route sets the context (and the
 * schema tier's search path) and checks the route at once, so a statement sent on a stale route
 * is refused before it runs even where its plan would never evaluate the policy (an index lookup
 * by id that finds no row). No SET clause on enter_route: it must leave its search_path behind.
 */
const ROUTE_FUNCTIONS = `
CREATE OR REPLACE FUNCTION tenantry.check_route(p_context text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  parts integer;
  route bigint;
  k record;
BEGIN
  IF p_context IS NULL OR p_context = '' THEN
    RETURN;
  END IF;
  -- signed: <id>.<expiry>[.<route>].<hmac>; unsigned: <id>[.<route>]
  parts := array_length(string_to_array(p_context, '.'), 1);
  route := CASE WHEN parts = 4 THEN split_part(p_context, '.', 3)::bigint
                WHEN parts = 2 THEN split_part(p_context, '.', 2)::bigint
                ELSE 0 END;
  SELECT l.state, l.epoch, r.serves_default INTO k
    FROM tenantry.local_route r LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(p_context, 36);
${ROUTE_CHECK}
END
$fn$;
CREATE OR REPLACE FUNCTION tenantry.enter_route(p_context text, p_search_path text) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  PERFORM pg_catalog.set_config('${CONTEXT_SETTING}', p_context, true);
  IF p_search_path IS NOT NULL AND p_search_path <> '' THEN
    PERFORM pg_catalog.set_config('search_path', p_search_path, true);
  END IF;
  PERFORM tenantry.check_route(p_context);
END
$fn$;`;

// In unsigned mode the function takes the fast form while it can, the checking form once it must:
// the route check costs nothing in a database that serves only the default route.
const UNSIGNED_CONTEXT_FUNCTION = `
CREATE OR REPLACE FUNCTION tenantry.choose_route_check() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF (SELECT value FROM tenantry.meta WHERE key = 'context_mode') IS DISTINCT FROM 'unsigned' THEN
    RETURN;
  END IF;
  -- two first placements at once would both replace the function ("tuple concurrently updated")
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.route_check'));
  IF EXISTS (SELECT FROM tenantry.local_tenants) OR NOT (SELECT r.serves_default FROM tenantry.local_route r) THEN
    IF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.current_tenant_id()'::regprocedure) <> (SELECT oid FROM pg_language WHERE lanname = 'plpgsql') THEN
      EXECUTE ${quoteDollar(UNSIGNED_CHECKING_BODY)};
    END IF;
  ELSIF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.current_tenant_id()'::regprocedure) <> (SELECT oid FROM pg_language WHERE lanname = 'sql') THEN
    EXECUTE ${quoteDollar(UNSIGNED_FAST_BODY)};
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.choose_route_check() FROM PUBLIC;
CREATE OR REPLACE FUNCTION tenantry.local_routes_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  PERFORM tenantry.choose_route_check();
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.local_routes_changed() FROM PUBLIC;
DROP TRIGGER IF EXISTS local_tenants_changed ON tenantry.local_tenants;
CREATE TRIGGER local_tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.local_tenants
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.local_routes_changed();
DROP TRIGGER IF EXISTS local_route_changed ON tenantry.local_route;
CREATE TRIGGER local_route_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.local_route
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.local_routes_changed();
${UNSIGNED_FAST_BODY};
SELECT tenantry.choose_route_check();`;

/**
 * True while the session is a tenant move's (TenantMover's owner connections set
 * `tenantry.moving = on`): application triggers that derive rows skip the rows a move copies or
 * deletes. The setting alone proves nothing (any role may set a custom setting), so the session
 * must also have logged in as the owner role or a superuser: the app role cannot switch a
 * trigger off this way.
 */
const IS_MOVING_FUNCTION = `
CREATE OR REPLACE FUNCTION tenantry.is_moving() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT coalesce(current_setting('tenantry.moving', true), '') = 'on'
     AND (session_user::text = (SELECT m.value FROM tenantry.meta m WHERE m.key = 'owner_role')
          OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false))
$fn$;`;

/** A dollar-quoted literal of `text` (which must not contain the tag). */
function quoteDollar(text: string): string {
  if (text.includes('$q$')) throw new Error('quoteDollar: the text contains the tag');
  return `$q$${text}$q$`;
}

/**
 * The SQL of `tenantry install`: roles, schemas, catalog, registry, policies helpers,
 * deny-by-default and the private schema. Idempotent; safe to run twice or concurrently
 * (it takes an advisory lock). Passwords appear only when given; the context secret never does.
 */
export function installSql(input: InstallOptions = {}): string {
  return renderInstallSql(resolveInstallOptions(input), installDigest());
}

/**
 * The canonical renderings the install digest is taken over: the defaults (roles `tenantry_app`
 * and `tenantry_owner`, no passwords, data schema `public`, the event trigger) in signed mode, in
 * unsigned mode, and with a support role, so that a change to any mode's SQL changes the digest;
 * never a deployment's own options or secrets.
 */
const DIGEST_OPTIONS: InstallOptions[] = [{}, { contextMode: 'unsigned' }, { supportRole: 'tenantry_support' }];

let digest: string | undefined;

/**
 * SHA-256 (hex) of this library version's install SQL, rendered with fixed canonical options.
 * `tenantry install` stores it in `tenantry.meta` (key `install_digest`); `tenantry doctor` reports
 * `INSTALL_OUTDATED` where the stored one differs (a database installed by another Tenantry
 * version, that `tenantry install --everywhere` brings up to date).
 *
 * @example
 * const { rows } = await admin.query(`select value from tenantry.meta where key = 'install_digest'`);
 * const stale = rows[0]?.value !== installDigest();
 */
export function installDigest(): string {
  if (digest === undefined) {
    const hash = createHash('sha256');
    for (const options of DIGEST_OPTIONS)
      hash.update(renderInstallSql(resolveInstallOptions(options), undefined)).update('\0');
    digest = hash.digest('hex');
  }
  return digest;
}

/** The install SQL for resolved options; `installDigestValue` undefined leaves the digest's meta row out (the digest's own input). */
function renderInstallSql(o: ResolvedInstallOptions, installDigestValue: string | undefined): string {
  const app = quoteIdent(o.appRole);
  const owner = quoteIdent(o.ownerRole);
  const lines: string[] = [];
  const add = (sql: string) => lines.push(sql.trim());

  add(`-- tenantry install v${INSTALL_VERSION} (context mode: ${o.contextMode})`);
  add(`SELECT pg_advisory_xact_lock(hashtext('tenantry.install'));`);
  add(`-- the owner runs DDL and the control plane (it may bypass RLS); the app owns nothing and never bypasses`);
  add(
    roleSql(o.ownerRole, 'NOSUPERUSER BYPASSRLS NOCREATEROLE NOCREATEDB', {
      rolsuper: false,
      rolbypassrls: true,
      rolcreaterole: false,
      rolcreatedb: false,
    }),
  );
  add(
    roleSql(o.appRole, 'NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION NOINHERIT', {
      rolsuper: false,
      rolbypassrls: false,
      rolcreaterole: false,
      rolcreatedb: false,
      rolreplication: false,
      rolinherit: false,
    }),
  );
  if (o.ownerPassword !== undefined) add(`ALTER ROLE ${owner} PASSWORD ${quoteLiteral(o.ownerPassword)};`);
  if (o.appPassword !== undefined) add(`ALTER ROLE ${app} PASSWORD ${quoteLiteral(o.appPassword)};`);
  const support = o.supportRole === undefined ? undefined : quoteIdent(o.supportRole);
  if (o.supportRole !== undefined && support !== undefined) {
    add(
      `-- the support role reads (never writes) one tenant at a time, under the same policies, while a staff grant is open`,
    );
    add(
      roleSql(o.supportRole, 'NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOREPLICATION NOINHERIT', {
        rolsuper: false,
        rolbypassrls: false,
        rolcreaterole: false,
        rolcreatedb: false,
        rolreplication: false,
        rolinherit: false,
      }),
    );
    if (o.supportPassword !== undefined) add(`ALTER ROLE ${support} PASSWORD ${quoteLiteral(o.supportPassword)};`);
    add(
      `DO $do$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO ${support}', current_database()); EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM ${support}', current_database()); END $do$;`,
    );
  }
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

  add(`-- everything below is owned by the owner role`);
  add(`SET LOCAL ROLE ${owner};`);
  add(`
CREATE TABLE IF NOT EXISTS tenantry.meta (
  key text PRIMARY KEY,
  value text NOT NULL
);`);
  add(`
INSERT INTO tenantry.meta (key, value) VALUES
  ('version', ${quoteLiteral(INSTALL_VERSION)}),
  ('app_role', ${quoteLiteral(o.appRole)}),
  ('owner_role', ${quoteLiteral(o.ownerRole)}),
  ('support_role', ${quoteLiteral(o.supportRole ?? '')}),
  ('context_mode', ${quoteLiteral(o.contextMode)}),
  ('data_schemas', ${quoteLiteral(o.dataSchemas.join(','))})${
    installDigestValue === undefined
      ? ''
      : `,
  ('install_digest', ${quoteLiteral(installDigestValue)})`
  }
ON CONFLICT (key) DO UPDATE SET value = excluded.value;`);

  add(`
CREATE TABLE IF NOT EXISTS tenantry_private.context_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  ipad bytea NOT NULL CHECK (length(ipad) = 64),
  opad bytea NOT NULL CHECK (length(opad) = 64),
  created_at timestamptz NOT NULL DEFAULT now()
);`);
  add(`REVOKE ALL ON ALL TABLES IN SCHEMA tenantry_private FROM PUBLIC, ${app};`);

  add(localRouteSql({ appRole: o.appRole, supportRole: o.supportRole }));
  add(ROUTE_FUNCTIONS);
  add(`REVOKE ALL ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) FROM PUBLIC;`);
  add(
    `GRANT EXECUTE ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) TO ${[app, ...(support ? [support] : [])].join(', ')};`,
  );
  add(o.contextMode === 'signed' ? SIGNED_CONTEXT_FUNCTION : UNSIGNED_CONTEXT_FUNCTION);
  add(`REVOKE ALL ON FUNCTION tenantry.current_tenant_id() FROM PUBLIC;`);
  add(`GRANT EXECUTE ON FUNCTION tenantry.current_tenant_id() TO ${app};`);
  if (support) add(`GRANT EXECUTE ON FUNCTION tenantry.current_tenant_id() TO ${support};`);
  // the tenant without the route check: for tables that never move (identity, pinned tables)
  add(homeTenantFunctionSql(o.contextMode, CONTEXT_SETTING));
  add(`REVOKE ALL ON FUNCTION tenantry.home_tenant_id() FROM PUBLIC;`);
  add(`GRANT EXECUTE ON FUNCTION tenantry.home_tenant_id() TO ${[app, ...(support ? [support] : [])].join(', ')};`);
  add(IS_MOVING_FUNCTION);
  add(`REVOKE ALL ON FUNCTION tenantry.is_moving() FROM PUBLIC;`);
  add(`GRANT EXECUTE ON FUNCTION tenantry.is_moving() TO ${[app, ...(support ? [support] : [])].join(', ')};`);

  add(`-- control plane: the tenant catalog`);
  add(`
CREATE TABLE IF NOT EXISTS tenantry.tenants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$'),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
  placement jsonb NOT NULL DEFAULT '{"tier": "shared"}',
  settings jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  suspended_at timestamptz,
  deleted_at timestamptz
);`);
  add(`CREATE INDEX IF NOT EXISTS tenants_status_idx ON tenantry.tenants (status);`);
  add(`ALTER TABLE tenantry.tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;`);
  add(`DROP POLICY IF EXISTS tenantry_self ON tenantry.tenants;`);
  add(`CREATE POLICY tenantry_self ON tenantry.tenants FOR SELECT USING (id = (SELECT tenantry.home_tenant_id()));`);
  add(`REVOKE ALL ON tenantry.tenants FROM PUBLIC, ${app};`);
  add(`GRANT SELECT ON tenantry.tenants TO ${app};`);
  add(placementSql({ appRole: o.appRole }));
  add(migrateSql({ appRole: o.appRole }));
  add(moveSql({ appRole: o.appRole }));

  add(`-- the registry of tables: tenant-owned or global; anything else is unreachable`);
  add(`
CREATE TABLE IF NOT EXISTS tenantry.registered_tables (
  relid regclass PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('tenant', 'global')),
  tenant_column name,
  writable boolean NOT NULL DEFAULT false,
  registered_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'tenant') = (tenant_column IS NOT NULL))
);`);
  add(`-- a pinned tenant table stays in its database when a tenant moves (TenantMover skips it);
-- a column added after the table's first release: ADD COLUMN IF NOT EXISTS upgrades an installed registry`);
  add(`ALTER TABLE tenantry.registered_tables ADD COLUMN IF NOT EXISTS pinned boolean NOT NULL DEFAULT false;`);
  add(`REVOKE ALL ON tenantry.registered_tables, tenantry.meta FROM PUBLIC, ${app};`);
  add(REGISTER_FUNCTIONS);
  add(
    `REVOKE ALL ON FUNCTION tenantry.register_tenant_table(regclass, name), tenantry.register_global_table(regclass, boolean), tenantry.unregister_table(regclass), tenantry.grant_column_sequences(regclass, text), tenantry.pin_tenant_table(regclass, boolean) FROM PUBLIC;`,
  );
  add(identitySql({ appRole: o.appRole, ownerRole: o.ownerRole, supportRole: o.supportRole }));
  add(pendingIdentitySql(o.appRole)); // pending: audit numbers, visible reasons; to become identity migrations
  if (support) {
    add(`GRANT EXECUTE ON FUNCTION tenantry.support_read_allowed() TO ${support};`);
    add(`-- tables registered before the support role existed get its grant and policy now`);
    add(
      `SELECT tenantry.register_tenant_table(r.relid, r.tenant_column) FROM tenantry.registered_tables r WHERE r.kind = 'tenant';`,
    );
  }
  add(`RESET ROLE;`);

  if (o.eventTrigger) {
    add(`-- deny by default, second wall: every new table starts with RLS forced and no policy`);
    add(EVENT_TRIGGER);
  }
  return `BEGIN;\n${lines.join('\n')}\nCOMMIT;\n`;
}

const REGISTER_FUNCTIONS = `
-- serial / identity columns: the app needs USAGE on the sequence behind them to insert
CREATE OR REPLACE FUNCTION tenantry.grant_column_sequences(tbl regclass, app text) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  seq text;
BEGIN
  FOR seq IN SELECT pg_get_serial_sequence(tbl::text, a.attname) FROM pg_attribute a
              WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
                AND pg_get_serial_sequence(tbl::text, a.attname) IS NOT NULL LOOP
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %I', seq, app);
  END LOOP;
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.register_tenant_table(tbl regclass, tenant_column name DEFAULT 'tenant_id') RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  app text := (SELECT value FROM tenantry.meta WHERE key = 'app_role');
  support text := (SELECT nullif(value, '') FROM tenantry.meta WHERE key = 'support_role');
  col record;
  cond text;
BEGIN
  SELECT a.attnotnull, a.atttypid INTO col FROM pg_attribute a
   WHERE a.attrelid = tbl AND a.attname = tenant_column AND NOT a.attisdropped;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: % has no column %', tbl, tenant_column USING ERRCODE = '42703',
      HINT = format('ALTER TABLE %s ADD COLUMN %I uuid NOT NULL', tbl, tenant_column);
  END IF;
  IF col.atttypid <> 'uuid'::regtype THEN
    RAISE EXCEPTION 'tenantry: %.% must be of type uuid', tbl, tenant_column USING ERRCODE = '42804';
  END IF;
  IF NOT col.attnotnull THEN
    RAISE EXCEPTION 'tenantry: %.% must be NOT NULL', tbl, tenant_column USING ERRCODE = '23502',
      HINT = format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', tbl, tenant_column);
  END IF;
  -- a pinned table never moves, so no statement can reach it on a stale route: its policy takes
  -- the proven tenant without the route check (the control plane works for a tenant placed elsewhere)
  cond := format('%I = (SELECT tenantry.%s())', tenant_column,
                 CASE WHEN EXISTS (SELECT FROM tenantry.registered_tables r WHERE r.relid = tbl AND r.kind = 'tenant' AND r.pinned)
                      THEN 'home_tenant_id' ELSE 'current_tenant_id' END);
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', tbl);
  EXECUTE format('CREATE POLICY tenantry_isolation ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)', tbl, cond, cond);
  IF NOT EXISTS (
    SELECT FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = tbl AND a.attname = tenant_column AND i.indisvalid AND i.indpred IS NULL
  ) THEN
    EXECUTE format('CREATE INDEX ON %s (%I)', tbl, tenant_column);
  END IF;
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
  EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, app);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, app);
  PERFORM tenantry.grant_column_sequences(tbl, app);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_support_read ON %s', tbl);
  IF support IS NOT NULL THEN
    -- restrictive: on top of tenantry_isolation, the support role sees a tenant's rows only while a staff read grant on it is open
    EXECUTE format('CREATE POLICY tenantry_support_read ON %s AS RESTRICTIVE FOR ALL TO %I USING ((SELECT tenantry.support_read_allowed())) WITH CHECK (false)', tbl, support);
    EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, support);
    EXECUTE format('GRANT SELECT ON %s TO %I', tbl, support);
  END IF;
  INSERT INTO tenantry.registered_tables (relid, kind, tenant_column, writable)
  VALUES (tbl, 'tenant', tenant_column, true)
  -- a re-registration (a migration run again, a new support role) keeps the table's pinned flag
  ON CONFLICT (relid) DO UPDATE SET kind = 'tenant', tenant_column = excluded.tenant_column, writable = true;
END
$fn$;

-- pinned: the table stays in this database when one of its tenants moves to another placement
-- (identity and control-plane tables the request path reads at home). Its isolation policy is
-- re-made with tenantry.home_tenant_id() (pinned) or tenantry.current_tenant_id() (unpinned).
CREATE OR REPLACE FUNCTION tenantry.pin_tenant_table(tbl regclass, pinned boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  col name;
BEGIN
  -- a tenant that moved away (or is moving) left its rows of this table here, or took them along:
  -- pinning now would make the leftovers live again, or strand the moved ones. Pin first, then move.
  IF pin_tenant_table.pinned AND EXISTS (SELECT FROM tenantry.local_tenants l WHERE l.state <> 'active') THEN
    RAISE EXCEPTION 'tenantry: % cannot be pinned while tenants have moved away from or are moving out of this database', tbl
      USING ERRCODE = '55000', HINT = 'pin tables before any tenant moves; see docs/moves.md (Pinned tables)';
  END IF;
  UPDATE tenantry.registered_tables r SET pinned = pin_tenant_table.pinned WHERE r.relid = tbl AND r.kind = 'tenant'
  RETURNING r.tenant_column INTO col;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: % is not registered as a tenant table', tbl USING ERRCODE = '55000',
      HINT = format('SELECT tenantry.register_tenant_table(%L) first', tbl::text);
  END IF;
  PERFORM tenantry.register_tenant_table(tbl, col);
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.register_global_table(tbl regclass, writable boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  app text := (SELECT value FROM tenantry.meta WHERE key = 'app_role');
BEGIN
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_global_read ON %s', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_global_write ON %s', tbl);
  EXECUTE format('CREATE POLICY tenantry_global_read ON %s FOR SELECT TO PUBLIC USING (true)', tbl);
  EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', tbl);
  EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, app);
  IF writable THEN
    EXECUTE format('CREATE POLICY tenantry_global_write ON %s FOR ALL TO PUBLIC USING (true) WITH CHECK (true)', tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %I', tbl, app);
    PERFORM tenantry.grant_column_sequences(tbl, app);
  ELSE
    EXECUTE format('GRANT SELECT ON %s TO %I', tbl, app);
  END IF;
  INSERT INTO tenantry.registered_tables (relid, kind, tenant_column, writable)
  VALUES (tbl, 'global', NULL, writable)
  ON CONFLICT (relid) DO UPDATE SET kind = 'global', tenant_column = NULL, writable = excluded.writable, pinned = false;
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.unregister_table(tbl regclass) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  app text := (SELECT value FROM tenantry.meta WHERE key = 'app_role');
  support text := (SELECT nullif(value, '') FROM tenantry.meta WHERE key = 'support_role');
BEGIN
  EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, app);
  IF support IS NOT NULL THEN
    EXECUTE format('REVOKE ALL ON %s FROM %I', tbl, support);
  END IF;
  EXECUTE format('DROP POLICY IF EXISTS tenantry_support_read ON %s', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_isolation ON %s', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_global_read ON %s', tbl);
  EXECUTE format('DROP POLICY IF EXISTS tenantry_global_write ON %s', tbl);
  EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
  DELETE FROM tenantry.registered_tables WHERE relid = tbl;
END
$fn$;`;

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
