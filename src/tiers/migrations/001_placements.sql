-- tiers 001: clusters, placements and the route functions of the data plane
-- The layout `tenantry install` created before the library schema was versioned; idempotent over
-- it (an install of that era is brought here by running it again). Runs as the owner role.
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
REVOKE ALL ON tenantry.clusters, tenantry.placements FROM PUBLIC, :TENANTRY_APP_ROLE;
REVOKE ALL ON SEQUENCE tenantry.route_epoch FROM PUBLIC, :TENANTRY_APP_ROLE;

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
  PERFORM pg_notify('tenantry_routes', NEW.epoch::text);
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
GRANT EXECUTE ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) TO :TENANTRY_APP_ROLE;
