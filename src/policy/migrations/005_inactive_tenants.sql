-- core 005: an inactive tenant gets nothing, at the data plane. A suspended or deleted tenant is
-- held in every database it has data in (tenantry.inactive_tenants), and the context check every
-- statement already runs refuses its context there: TR005 suspended, TR006 deleted. Enforced by
-- the database at commit time, on every instance at once and for raw SQL too. The home database
-- keeps its holds in step with tenantry.tenants.status by a trigger (same transaction);
-- TenantCatalog writes them in a tenant's placement databases (schema and database tiers, other
-- clusters), and `tenantry install --everywhere` reconciles them. Lifecycle operations (purge,
-- export, restore) run as the owner role, which bypasses RLS and never reads the context.
--
-- What is refused: tenantry.current_tenant_id() (every tenant table that moves with its tenant)
-- refuses both; tenantry.home_tenant_id() (pinned and identity tables, the control plane at home)
-- refuses a deleted tenant only: a suspended tenant's members can still be told apart from
-- strangers (membership lookups answer NOT_A_MEMBER vs TENANT_SUSPENDED), its staff can still act.
CREATE TABLE IF NOT EXISTS tenantry.inactive_tenants (
  tenant_key text PRIMARY KEY CHECK (tenant_key ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  status text NOT NULL CHECK (status IN ('suspended', 'deleted')),
  updated_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.inactive_tenants FROM PUBLIC, :TENANTRY_APP_ROLE;
-- read only by the owner (the SECURITY DEFINER checks); no policy, and the owner bypasses RLS
ALTER TABLE tenantry.inactive_tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- STABLE, not IMMUTABLE: never folded (and so raised) while a statement is planned
CREATE OR REPLACE FUNCTION tenantry.refuse_inactive(p_status text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_status = 'deleted' THEN
    RAISE EXCEPTION 'tenantry: the tenant is deleted' USING ERRCODE = 'TR006';
  END IF;
  RAISE EXCEPTION 'tenantry: the tenant is suspended' USING ERRCODE = 'TR005';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.refuse_inactive(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.refuse_inactive(text) TO :TENANTRY_APP_ROLE;

-- the home database: the hold follows the catalog's status in the same transaction. A tenant
-- row deleted (after a purge) leaves a 'deleted' hold: its id never serves again by accident.
CREATE OR REPLACE FUNCTION tenantry.tenant_status_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO tenantry.inactive_tenants (tenant_key, status) VALUES (OLD.id::text, 'deleted')
    ON CONFLICT (tenant_key) DO UPDATE SET status = 'deleted', updated_at = now();
  ELSIF NEW.status = 'active' THEN
    DELETE FROM tenantry.inactive_tenants WHERE tenant_key = NEW.id::text;
  ELSE
    INSERT INTO tenantry.inactive_tenants (tenant_key, status) VALUES (NEW.id::text, NEW.status)
    ON CONFLICT (tenant_key) DO UPDATE SET status = excluded.status, updated_at = now();
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.tenant_status_changed() FROM PUBLIC;
DROP TRIGGER IF EXISTS tenant_status_hold ON tenantry.tenants;
CREATE TRIGGER tenant_status_hold AFTER INSERT OR DELETE OR UPDATE OF status ON tenantry.tenants
  FOR EACH ROW EXECUTE FUNCTION tenantry.tenant_status_changed();
-- tenants already inactive when this migration runs
INSERT INTO tenantry.inactive_tenants (tenant_key, status)
SELECT t.id::text, t.status FROM tenantry.tenants t WHERE t.status <> 'active'
ON CONFLICT (tenant_key) DO UPDATE SET status = excluded.status, updated_at = now();

-- the route check of unsigned mode and of RoutedTenantPool's prefix (tenantry.enter_route), with the hold
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
  SELECT l.state, l.epoch, r.serves_default, i.status INTO k
    FROM tenantry.local_route r LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(p_context, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(p_context, 36);
  IF k.status IS NOT NULL THEN
    PERFORM tenantry.refuse_inactive(k.status);
  END IF;
  IF k.state IS NULL THEN
    IF route <> 0 OR NOT k.serves_default THEN
      PERFORM tenantry.refuse_route('moved');
    END IF;
  ELSIF k.state <> 'active' OR k.epoch <> route THEN
    PERFORM tenantry.refuse_route(k.state);
  END IF;
END
$fn$;
-- unsigned mode's home_tenant_id() while a deleted tenant is held here: the hold alone
CREATE OR REPLACE FUNCTION tenantry.check_deleted(p_context text) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF EXISTS (SELECT FROM tenantry.inactive_tenants i WHERE i.tenant_key = left(p_context, 36) AND i.status = 'deleted') THEN
    PERFORM tenantry.refuse_inactive('deleted');
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.check_route(text), tenantry.check_deleted(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.check_route(text), tenantry.check_deleted(text) TO :TENANTRY_APP_ROLE;

-- unsigned mode keeps its inlined (no lookup) functions while nothing here needs a check: the
-- checking form of current_tenant_id() while tenants are placed here or held inactive, the
-- checking form of home_tenant_id() while a deleted tenant is held
CREATE OR REPLACE FUNCTION tenantry.choose_route_check() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  plpgsql_oid oid := (SELECT oid FROM pg_language WHERE lanname = 'plpgsql');
BEGIN
  IF (SELECT value FROM tenantry.meta WHERE key = 'context_mode') IS DISTINCT FROM 'unsigned' THEN
    RETURN;
  END IF;
  -- two first placements at once would both replace the function ("tuple concurrently updated")
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.route_check'));
  IF EXISTS (SELECT FROM tenantry.local_tenants) OR EXISTS (SELECT FROM tenantry.inactive_tenants)
     OR NOT (SELECT r.serves_default FROM tenantry.local_route r) THEN
    IF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.current_tenant_id()'::regprocedure) <> plpgsql_oid THEN
      EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $body$
DECLARE
  v text := pg_catalog.current_setting('tenantry.context', true);
  tid text;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  tid := pg_catalog.split_part(v, '.', 1);
  PERFORM tenantry.check_route(v);
  RETURN tid::uuid;
END
$body$$q$;
    END IF;
  ELSIF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.current_tenant_id()'::regprocedure) = plpgsql_oid THEN
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT CASE WHEN strpos(current_setting('tenantry.context', true), '.') > 0 THEN tenantry.refuse_route('moved')
              ELSE nullif(current_setting('tenantry.context', true), '')::uuid END
$body$$q$;
  END IF;
  IF EXISTS (SELECT FROM tenantry.inactive_tenants i WHERE i.status = 'deleted') THEN
    IF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.home_tenant_id()'::regprocedure) <> plpgsql_oid THEN
      EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $body$
DECLARE
  v text := pg_catalog.current_setting('tenantry.context', true);
  tid text;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  tid := pg_catalog.split_part(v, '.', 1);
  PERFORM tenantry.check_deleted(v);
  RETURN tid::uuid;
END
$body$$q$;
    END IF;
  ELSIF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.home_tenant_id()'::regprocedure) = plpgsql_oid THEN
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT nullif(split_part(current_setting('tenantry.context', true), '.', 1), '')::uuid
$body$$q$;
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.choose_route_check() FROM PUBLIC;
DROP TRIGGER IF EXISTS inactive_tenants_changed ON tenantry.inactive_tenants;
CREATE TRIGGER inactive_tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.inactive_tenants
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.local_routes_changed();

-- the context functions of both modes again, with the hold (signed: in the one lookup they make)
CREATE OR REPLACE FUNCTION tenantry.use_context_mode(p_mode text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $use$
BEGIN
  IF p_mode = 'signed' THEN
    -- Signed mode: the context is '<tenant uuid>.<expiry epoch>[.<route epoch>].<hex HMAC-SHA256>'
    -- signed with a key the app role cannot read. Injected SQL can set the setting, but not forge a
    -- valid value. The route epoch (absent: 0, the default route) must match where the tenant lives
    -- in this database (tenantry.local_tenants): a stale router fails with TR003, a frozen tenant TR004.
    -- A tenant held here as suspended fails with TR005, a deleted one TR006 (tenantry.inactive_tenants).
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v text := current_setting('tenantry.context', true);
  k record;
  route bigint;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  IF length(v) NOT BETWEEN 103 AND 134 OR v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$' OR substr(v, length(v) - 64, 1) <> '.' THEN
    RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
  END IF;
  -- one lookup for the key and for this tenant's local route (text key: no cast of unproven input)
  SELECT c.ipad, c.opad, c.previous_ipad, c.previous_opad, c.previous_until, l.state, l.epoch, r.serves_default, i.status INTO k
    FROM tenantry_private.context_key c CROSS JOIN tenantry.local_route r
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(v, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(v, 36);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  -- the current key first; while a rotation's overlap lasts, the previous key too (a value signed
  -- by an app instance that still has the old secret): the extra hash is paid only on a mismatch
  IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') <> right(v, 64)
     AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
              AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64)) THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  -- a suspended or deleted tenant: only after the proof, so a forged value learns nothing
  IF k.status IS NOT NULL THEN
    PERFORM tenantry.refuse_inactive(k.status);
  END IF;
  route := CASE WHEN split_part(v, '.', 4) = '' THEN 0 ELSE split_part(v, '.', 3)::bigint END;
  IF k.state IS NULL THEN
    IF route <> 0 OR NOT k.serves_default THEN
      PERFORM tenantry.refuse_route('moved');
    END IF;
  ELSIF k.state <> 'active' OR k.epoch <> route THEN
    PERFORM tenantry.refuse_route(k.state);
  END IF;
  RETURN left(v, 36)::uuid;
END
$fn$$q$;
    -- the tenant without the route check: for tables that never move (identity, pinned tables)
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v text := current_setting('tenantry.context', true);
  k record;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  -- the format and proof of current_tenant_id(), without its route check
  IF length(v) NOT BETWEEN 103 AND 134 OR v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$' OR substr(v, length(v) - 64, 1) <> '.' THEN
    RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
  END IF;
  SELECT c.ipad, c.opad, c.previous_ipad, c.previous_opad, c.previous_until, i.status INTO k
    FROM tenantry_private.context_key c LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(v, 36);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  -- the current key first; while a rotation's overlap lasts, the previous key too (a value signed
  -- by an app instance that still has the old secret): the extra hash is paid only on a mismatch
  IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') <> right(v, 64)
     AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
              AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64)) THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  IF k.status = 'deleted' THEN
    PERFORM tenantry.refuse_inactive(k.status);
  END IF;
  RETURN left(v, 36)::uuid;
END
$fn$$q$;
  ELSIF p_mode = 'unsigned' THEN
    -- inlined into the statement: no lookup, as cheap as reading the setting
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT nullif(split_part(current_setting('tenantry.context', true), '.', 1), '')::uuid
$body$$q$;
    -- the fast form first; choose_route_check() takes the checking form if this database needs it
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT CASE WHEN strpos(current_setting('tenantry.context', true), '.') > 0 THEN tenantry.refuse_route('moved')
              ELSE nullif(current_setting('tenantry.context', true), '')::uuid END
$body$$q$;
    PERFORM tenantry.choose_route_check();
  ELSE
    RAISE EXCEPTION 'tenantry: unknown context mode %', p_mode USING ERRCODE = '22023';
  END IF;
END
$use$;
REVOKE ALL ON FUNCTION tenantry.use_context_mode(text) FROM PUBLIC;
SELECT tenantry.use_context_mode(coalesce((SELECT m.value FROM tenantry.meta m WHERE m.key = 'context_mode'), 'signed'));
