import { quoteIdent } from '../policy/identifiers.js';

/** The channel on which the catalog announces route changes (payload: the new route epoch, nothing else). */
export const ROUTES_CHANNEL = 'tenantry_routes';

/**
 * The tiers part of `tenantry install`, run in every database Tenantry is installed in:
 *
 * - `tenantry.clusters` and `tenantry.placements`: the catalog of where each tenant lives
 *   (meaningful in the home database, where the catalog is; empty elsewhere). A tenant without
 *   a placement row lives in the shared tier of the home cluster: creating a tenant stays one
 *   INSERT. Every change takes a new `epoch` from one sequence and NOTIFYs it on
 *   `tenantry_routes`, so routers refresh what changed since the epoch they know.
 * - `tenantry.local_tenants`: in each database, the tenants that live here under a route other
 *   than the default one, with their route epoch and state. `tenantry.current_tenant_id()`
 *   checks it on every statement: a statement sent with a stale route (an old epoch), to a
 *   database the tenant has moved out of, or while the tenant is frozen for a move, fails with
 *   TR003 (stale route: refresh and retry) or TR004 (frozen: retry shortly). Keyed by the tenant
 *   id as text so the check never casts untrusted input.
 */
export function placementSql(roles: { appRole: string }): string {
  const app = quoteIdent(roles.appRole);
  return `
-- tiers: clusters and placements (the catalog of where each tenant lives)
CREATE TABLE IF NOT EXISTS tenantry.clusters (
  name text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining', 'disabled')),
  -- relative weight for placement policies: how many tenants of average size it should take
  capacity integer NOT NULL DEFAULT 1000 CHECK (capacity >= 0),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO tenantry.clusters (name) VALUES ('home') ON CONFLICT (name) DO NOTHING;

CREATE SEQUENCE IF NOT EXISTS tenantry.route_epoch;

CREATE TABLE IF NOT EXISTS tenantry.placements (
  tenant_id uuid PRIMARY KEY REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  tier text NOT NULL CHECK (tier IN ('shared', 'schema', 'database')),
  cluster text NOT NULL REFERENCES tenantry.clusters (name),
  -- NULL: the cluster's shared database
  database text CHECK (database ~ '^[a-z_][a-z0-9_]{0,62}$'),
  schema text CHECK (schema ~ '^[a-z_][a-z0-9_]{0,62}$'),
  epoch bigint NOT NULL DEFAULT nextval('tenantry.route_epoch'),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((tier = 'schema') = (schema IS NOT NULL)),
  CHECK (tier <> 'database' OR database IS NOT NULL)
);
CREATE INDEX IF NOT EXISTS placements_epoch_idx ON tenantry.placements (epoch);
REVOKE ALL ON tenantry.clusters, tenantry.placements FROM PUBLIC, ${app};
REVOKE ALL ON SEQUENCE tenantry.route_epoch FROM PUBLIC, ${app};

CREATE OR REPLACE FUNCTION tenantry.placement_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  -- a caller may take the epoch first (tenantry.next_route_epoch) to prepare the target database
  IF TG_OP = 'UPDATE' AND NEW.epoch = OLD.epoch THEN
    NEW.epoch := nextval('tenantry.route_epoch');
  ELSIF TG_OP = 'UPDATE' AND NEW.epoch < OLD.epoch THEN
    -- an epoch taken before a later switch committed: the caller must take a new one (Placements serialises)
    RAISE EXCEPTION 'tenantry: route epoch % is older than the placement''s %', NEW.epoch, OLD.epoch USING ERRCODE = '40001';
  END IF;
  NEW.updated_at := now();
  PERFORM pg_notify('${ROUTES_CHANNEL}', NEW.epoch::text);
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.placement_changed() FROM PUBLIC;
DROP TRIGGER IF EXISTS placements_epoch ON tenantry.placements;
CREATE TRIGGER placements_epoch BEFORE INSERT OR UPDATE ON tenantry.placements
  FOR EACH ROW EXECUTE FUNCTION tenantry.placement_changed();

-- Routes for the data plane (no tenant in context yet): one tenant's, or every change since an epoch.
CREATE OR REPLACE FUNCTION tenantry.route_of(p_tenant uuid)
RETURNS TABLE (tenant_id uuid, tier text, cluster text, database text, schema text, epoch bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT p.tenant_id, p.tier, p.cluster, p.database, p.schema, p.epoch FROM tenantry.placements p WHERE p.tenant_id = p_tenant;
$fn$;
CREATE OR REPLACE FUNCTION tenantry.routes_since(p_epoch bigint)
RETURNS TABLE (tenant_id uuid, tier text, cluster text, database text, schema text, epoch bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT p.tenant_id, p.tier, p.cluster, p.database, p.schema, p.epoch FROM tenantry.placements p
   WHERE p.epoch > p_epoch ORDER BY p.epoch LIMIT 10000;
$fn$;
CREATE OR REPLACE FUNCTION tenantry.next_route_epoch() RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$ SELECT nextval('tenantry.route_epoch') $fn$;
REVOKE ALL ON FUNCTION tenantry.next_route_epoch() FROM PUBLIC;
REVOKE ALL ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) TO ${app};`;
}

/**
 * `tenantry.local_tenants` and `tenantry.refuse_route`: created before the context function,
 * which reads them on every statement (see {@link placementSql}).
 */
export function localRouteSql(roles: { appRole: string; supportRole: string | undefined }): string {
  const app = quoteIdent(roles.appRole);
  const readers = [app, ...(roles.supportRole ? [quoteIdent(roles.supportRole)] : [])].join(', ');
  return `
-- where each tenant that does not use the default route lives in THIS database
CREATE TABLE IF NOT EXISTS tenantry.local_tenants (
  tenant_key text PRIMARY KEY CHECK (tenant_key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  -- active: served here under route epoch 'epoch'; frozen: a move is switching it (retry);
  -- moved: it lives elsewhere now (refresh the route)
  state text NOT NULL CHECK (state IN ('active', 'frozen', 'moved')),
  epoch bigint NOT NULL,
  schema text CHECK (schema ~ '^[a-z_][a-z0-9_]{0,62}$'),
  updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.local_tenants FROM PUBLIC, ${app};
-- whether this database serves tenants on the default route (epoch 0: no placement): only the
-- home cluster's shared database does; Placements turns it off in every other database it
-- places a tenant in, so a misrouted default-route statement there is refused, not served
CREATE TABLE IF NOT EXISTS tenantry.local_route (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  serves_default boolean NOT NULL DEFAULT true
);
INSERT INTO tenantry.local_route DEFAULT VALUES ON CONFLICT (id) DO NOTHING;
REVOKE ALL ON tenantry.local_route FROM PUBLIC, ${readers};
-- only the owner reads them (through the SECURITY DEFINER checks): where tenants live is nobody
-- else's business; RLS on with no policy, like every table nobody configured
ALTER TABLE tenantry.local_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenantry.local_route ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS local_tenants_read ON tenantry.local_tenants;
DROP POLICY IF EXISTS local_route_read ON tenantry.local_route;
REVOKE ALL ON tenantry.local_tenants FROM ${readers};

-- STABLE, not IMMUTABLE: never folded (and so raised) while a statement is planned
CREATE OR REPLACE FUNCTION tenantry.refuse_route(p_state text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_state = 'frozen' THEN
    RAISE EXCEPTION 'tenantry: the tenant is frozen while it moves: retry shortly' USING ERRCODE = 'TR004';
  END IF;
  RAISE EXCEPTION 'tenantry: the tenant does not live here under this route: refresh the route and retry' USING ERRCODE = 'TR003';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.refuse_route(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.refuse_route(text) TO ${readers};

`;
}
