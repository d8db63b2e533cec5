import { quoteIdent, quoteLiteral, validIdentifier } from '../policy/identifiers.js';
import { DEFAULT_LIVE_CHANNEL } from './tenant-event.js';

/** Options of {@link liveSchemaSql}. */
export interface LiveSchemaOptions {
  /** The application role (gets EXECUTE on the event function). */
  appRole: string;
  /** Schema of the two tables and the function; default `public`. */
  schema?: string;
  /** The deployment's one NOTIFY channel; default `tenantry_live`. */
  channel?: string;
  /**
   * `true`: the function writes into the event tables found through the CALLER's search path
   * (no pinned `search_path`, unqualified table names), so one function in `public` serves the
   * shared tables and every tenant schema of the database: a schema-tier tenant reached through
   * a `RoutedTenantPool` (search path `t_acme`) appends to `t_acme`'s tables. For
   * deployments with schema-tier tenants (the schemas get their tables from
   * {@link liveTablesSql}). Default `false`: the tables of `schema`, whatever the path.
   */
  followSearchPath?: boolean;
}

/** Options of {@link liveEmitFunctionSql}. */
export interface LiveEmitFunctionOptions extends LiveSchemaOptions {
  /** `CREATE OR REPLACE FUNCTION`: switch an existing function (e.g. to `followSearchPath`) in a later migration. */
  orReplace?: boolean;
}

/** Options of {@link liveTablesSql}. */
export interface LiveTablesOptions {
  /**
   * Schema of the two tables. Default `null`: unqualified names, created in the first schema of
   * the search path, as `createTenantSchema` and the `tenant/` migrations run them.
   */
  schema?: string | null;
}

/**
 * The event log's DDL, for a migration run as the owner role after `tenantry install`:
 *
 * - `tenant_event_streams (tenant_id, route, last_seq)`: one row per tenant. `route` is 128
 *   random bits, the only thing a NOTIFY carries; it can be read only under the tenant's own
 *   (signed) context. Writers lock the row from their first event to their commit, so `seq` is
 *   gap-free and in commit order per tenant.
 * - `tenant_events (tenant_id, seq, topic, payload, created_at)`: the events.
 * - `emit_tenant_event(topic, payload, tenant default current)`: SECURITY INVOKER, so RLS checks
 *   the tenant; appends the event and NOTIFYs the route, both in the caller's transaction.
 *
 * Both tables are registered with `tenantry.register_tenant_table` (RLS forced). With tiers: run
 * it with `followSearchPath: true` in each shared database that hosts tenant schemas, and
 * {@link liveTablesSql} in each tenant schema; a tenant database gets either form.
 *
 * @example
 * await owner.query(liveSchemaSql({ appRole: 'tenantry_app' }));
 * await owner.query(liveSchemaSql({ appRole: 'tenantry_app', followSearchPath: true })); // with schema-tier tenants
 */
export function liveSchemaSql(options: LiveSchemaOptions): string {
  return `${tables(`${quoteIdent(options.schema ?? 'public', 'schema')}.`)}
${emitFunction(options, 'CREATE FUNCTION')}`;
}

/**
 * Only the two event tables (registered as tenant tables), without the function: for a tenant
 * schema, whose tenant calls the `emit_tenant_event` of `public` in the same database (made by
 * `liveSchemaSql({ followSearchPath: true })`), which writes here through the tenant's search
 * path. Unqualified by default, as the DDL of `createTenantSchema` and of `tenant/` migrations.
 *
 * @example
 * await createTenantSchema(owner, 't_acme', liveTablesSql());
 */
export function liveTablesSql(options: LiveTablesOptions = {}): string {
  const schema = options.schema ?? null;
  return tables(schema === null ? '' : `${quoteIdent(schema, 'schema')}.`);
}

/**
 * Only `emit_tenant_event` (with its grants), as {@link liveSchemaSql} makes it: with
 * `orReplace`, a later migration switches an existing deployment's function to
 * `followSearchPath` without touching the tables.
 *
 * @example
 * await owner.query(liveEmitFunctionSql({ appRole: 'tenantry_app', followSearchPath: true, orReplace: true }));
 */
export function liveEmitFunctionSql(options: LiveEmitFunctionOptions): string {
  return emitFunction(options, options.orReplace ? 'CREATE OR REPLACE FUNCTION' : 'CREATE FUNCTION');
}

function tables(prefix: string): string {
  return `
CREATE TABLE ${prefix}tenant_event_streams (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id() PRIMARY KEY,
  -- the doorbell carried by NOTIFY: random, unlinkable to the tenant without its context
  route text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (route ~ '^[0-9a-f]{32}$'),
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
SELECT tenantry.register_tenant_table('${prefix}tenant_event_streams');

CREATE TABLE ${prefix}tenant_events (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  seq bigint NOT NULL CHECK (seq > 0),
  topic text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object' AND pg_column_size(payload) <= 8192),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);
SELECT tenantry.register_tenant_table('${prefix}tenant_events');
`;
}

// The pinned form (the default) names its tables `<schema>.` and runs with
// `search_path = pg_catalog, pg_temp`: whatever the caller's path, it writes where it was made
// to write. The search-path form cannot pin a path (it must find `t_acme`'s tables for one caller
// and `public`'s for the next, and a pinned `"$user", public`-style path would name neither), so
// its table names are unqualified and resolved through the CALLER's path, and every function it
// calls is `pg_catalog.`-qualified. The trade-off: whoever can put a table named `tenant_events`
// earlier on a caller's path (a schema it may CREATE in, its own `pg_temp`) redirects that
// caller's events there. Harmless for a SECURITY INVOKER function: it runs with the caller's own
// rights and RLS, so a caller who redirects its own session gains nothing it could not do with a
// plain INSERT (and the readers read the real tables); a caller with MORE rights (an owner's
// migration, a trigger fired by a superuser) should not run it with a path where others may
// create tables, which is the ordinary rule for any unqualified SQL. Never make it SECURITY
// DEFINER: with a caller-chosen path, that would lend the owner's rights to the caller's tables.
function emitFunction(options: LiveSchemaOptions, create: string): string {
  const schema = quoteIdent(options.schema ?? 'public', 'schema');
  const app = quoteIdent(options.appRole, 'role');
  const channel = quoteLiteral(validIdentifier(options.channel ?? DEFAULT_LIVE_CHANNEL, 'channel'));
  const follow = options.followSearchPath === true;
  const prefix = follow ? '' : `${schema}.`;
  const header = follow
    ? `-- tables found through the CALLER's search path: no pinned search_path (see liveSchemaSql's followSearchPath)
`
    : `SET search_path = pg_catalog, pg_temp
`;
  const notify = follow ? 'pg_catalog.pg_notify' : 'pg_notify';
  return `${create} ${schema}.emit_tenant_event(topic text, payload jsonb DEFAULT '{}'::jsonb, tenant uuid DEFAULT tenantry.current_tenant_id())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
${header}AS $fn$
DECLARE
  v_seq bigint;
  v_route text;
BEGIN
  IF emit_tenant_event.tenant IS NULL THEN
    RAISE EXCEPTION 'tenantry: an event needs a tenant' USING ERRCODE = '42501';
  END IF;
  -- the row lock serializes this tenant's writers until commit: seq follows commit order
  INSERT INTO ${prefix}tenant_event_streams AS s (tenant_id, last_seq) VALUES (emit_tenant_event.tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING s.last_seq, s.route INTO v_seq, v_route;
  INSERT INTO ${prefix}tenant_events (tenant_id, seq, topic, payload)
  VALUES (emit_tenant_event.tenant, v_seq, emit_tenant_event.topic, COALESCE(emit_tenant_event.payload, '{}'::jsonb));
  -- sent at commit, once per transaction and route (PostgreSQL folds duplicates)
  PERFORM ${notify}(${channel}, v_route);
  RETURN v_seq;
END
$fn$;
REVOKE ALL ON FUNCTION ${schema}.emit_tenant_event(text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${schema}.emit_tenant_event(text, jsonb, uuid) TO ${app};
`;
}
