-- core 007: the signed check at a quarter to a third less per call (issue 15). Measured (docs/benchmarks.md, "The signed
-- check, second pass"): what a SECURITY DEFINER check costs per statement is mostly the set-up of
-- what it runs, once per statement: every relation its query reads (each a scan to open) and every
-- function in every expression it evaluates (each looked up as the expression is prepared), while
-- the two SHA-256 and the SET clause are cheap. So:
--  - one private table, tenantry_private.context_gate, holds what the check needs to know of a
--    tenant in this database (its local route, its hold), kept in step with tenantry.local_tenants
--    and tenantry.inactive_tenants by triggers in the same transaction, and the key row carries
--    tenantry.local_route's serves_default: the check reads two relations instead of four;
--  - the previous key of a rotation's overlap is checked in its own statement, reached only on a
--    mismatch (an expression is prepared in full when first evaluated, branches not taken included);
--  - the HMAC is computed in the lookup's query (one expression prepared, not three).
-- Same format check, same error codes and messages, same order (proof first, then the hold, then
-- the route), same SET search_path (it costs ~2 µs: kept; names are resolved through it alone).
ALTER TABLE tenantry_private.context_key ADD COLUMN IF NOT EXISTS serves_default boolean NOT NULL DEFAULT true;
CREATE TABLE IF NOT EXISTS tenantry_private.context_gate (
  tenant_key text PRIMARY KEY,
  -- tenantry.local_tenants' state and epoch (null: no row there)
  state text,
  epoch bigint,
  -- tenantry.inactive_tenants' status (null: no hold)
  hold text,
  CHECK (state IS NOT NULL OR hold IS NOT NULL)
);
REVOKE ALL ON tenantry_private.context_gate FROM PUBLIC, :TENANTRY_APP_ROLE;
-- read only by the owner (the SECURITY DEFINER checks); no policy, and the owner bypasses RLS
ALTER TABLE tenantry_private.context_gate ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

-- one tenant's gate row from the two tables it mirrors (none when neither has a row). Writers of
-- one tenant's rows in the two tables take turns (a transaction-level lock per tenant): the one
-- that waited then reads what the other committed (each statement reads afresh at READ
-- COMMITTED), instead of failing on the other's gate row or writing a row that misses its change
CREATE OR REPLACE FUNCTION tenantry.refresh_context_gate(p_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.context_gate'), hashtext(p_key));
  DELETE FROM tenantry_private.context_gate g WHERE g.tenant_key = p_key;
  INSERT INTO tenantry_private.context_gate (tenant_key, state, epoch, hold)
  SELECT p_key, l.state, l.epoch, i.status
    FROM (SELECT) one
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = p_key
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = p_key
   WHERE l.tenant_key IS NOT NULL OR i.tenant_key IS NOT NULL;
END
$fn$;
-- every gate row again (first run, TRUNCATE of either table)
CREATE OR REPLACE FUNCTION tenantry.rebuild_context_gate() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  -- after every refresh in progress, before any that starts now
  LOCK TABLE tenantry_private.context_gate IN SHARE ROW EXCLUSIVE MODE;
  DELETE FROM tenantry_private.context_gate;
  INSERT INTO tenantry_private.context_gate (tenant_key, state, epoch, hold)
  SELECT coalesce(l.tenant_key, i.tenant_key), l.state, l.epoch, i.status
    FROM tenantry.local_tenants l FULL JOIN tenantry.inactive_tenants i ON i.tenant_key = l.tenant_key;
  UPDATE tenantry_private.context_key k SET serves_default = coalesce((SELECT r.serves_default FROM tenantry.local_route r), true)
   WHERE k.serves_default IS DISTINCT FROM coalesce((SELECT r.serves_default FROM tenantry.local_route r), true);
END
$fn$;
CREATE OR REPLACE FUNCTION tenantry.context_gate_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF TG_OP = 'TRUNCATE' OR TG_TABLE_NAME = 'local_route' THEN
    PERFORM tenantry.rebuild_context_gate();
    RETURN NULL;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    PERFORM tenantry.refresh_context_gate(OLD.tenant_key);
  END IF;
  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR NEW.tenant_key IS DISTINCT FROM OLD.tenant_key) THEN
    PERFORM tenantry.refresh_context_gate(NEW.tenant_key);
  END IF;
  RETURN NULL;
END
$fn$;
-- a key row written later (install with a secret, setContextSecret) takes the route flag of now
CREATE OR REPLACE FUNCTION tenantry.context_key_written() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  NEW.serves_default := coalesce((SELECT r.serves_default FROM tenantry.local_route r), true);
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.refresh_context_gate(text), tenantry.rebuild_context_gate(),
  tenantry.context_gate_changed(), tenantry.context_key_written() FROM PUBLIC, :TENANTRY_APP_ROLE;
-- the triggers, on tables that are not Citus tables: Citus refuses trigger DDL on its reference
-- tables (an install the Citus step prepared before this migration), and its signed check reads
-- those tables themselves (src/citus/citus-prepare-sql.ts), so the mirror is not used there
CREATE OR REPLACE FUNCTION tenantry.is_citus_table(p_table regclass) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  found boolean;
BEGIN
  IF to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = $1)' INTO found USING p_table;
  RETURN found;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.is_citus_table(regclass) FROM PUBLIC, :TENANTRY_APP_ROLE;
DO $do$
BEGIN
  IF NOT tenantry.is_citus_table('tenantry.local_tenants') THEN
    DROP TRIGGER IF EXISTS context_gate_local ON tenantry.local_tenants;
    CREATE TRIGGER context_gate_local AFTER INSERT OR UPDATE OR DELETE ON tenantry.local_tenants
      FOR EACH ROW EXECUTE FUNCTION tenantry.context_gate_changed();
    DROP TRIGGER IF EXISTS context_gate_local_truncate ON tenantry.local_tenants;
    CREATE TRIGGER context_gate_local_truncate AFTER TRUNCATE ON tenantry.local_tenants
      FOR EACH STATEMENT EXECUTE FUNCTION tenantry.context_gate_changed();
  END IF;
  IF NOT tenantry.is_citus_table('tenantry.inactive_tenants') THEN
    DROP TRIGGER IF EXISTS context_gate_hold ON tenantry.inactive_tenants;
    CREATE TRIGGER context_gate_hold AFTER INSERT OR UPDATE OR DELETE ON tenantry.inactive_tenants
      FOR EACH ROW EXECUTE FUNCTION tenantry.context_gate_changed();
    DROP TRIGGER IF EXISTS context_gate_hold_truncate ON tenantry.inactive_tenants;
    CREATE TRIGGER context_gate_hold_truncate AFTER TRUNCATE ON tenantry.inactive_tenants
      FOR EACH STATEMENT EXECUTE FUNCTION tenantry.context_gate_changed();
  END IF;
  IF NOT tenantry.is_citus_table('tenantry.local_route') THEN
    DROP TRIGGER IF EXISTS context_gate_route ON tenantry.local_route;
    CREATE TRIGGER context_gate_route AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.local_route
      FOR EACH STATEMENT EXECUTE FUNCTION tenantry.context_gate_changed();
  END IF;
  IF NOT tenantry.is_citus_table('tenantry_private.context_key') THEN
    DROP TRIGGER IF EXISTS context_key_route ON tenantry_private.context_key;
    CREATE TRIGGER context_key_route BEFORE INSERT ON tenantry_private.context_key
      FOR EACH ROW EXECUTE FUNCTION tenantry.context_key_written();
  END IF;
  IF NOT tenantry.is_citus_table('tenantry.local_tenants') AND NOT tenantry.is_citus_table('tenantry_private.context_key') THEN
    PERFORM tenantry.rebuild_context_gate();
  END IF;
END
$do$;

-- the route check of unsigned mode and of RoutedTenantPool's prefix (tenantry.enter_route): the
-- gate instead of the two tables it mirrors (two relations read instead of three)
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
  SELECT g.state, g.epoch, r.serves_default, g.hold AS status INTO k
    FROM tenantry.local_route r LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = left(p_context, 36);
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

CREATE OR REPLACE FUNCTION tenantry.use_context_mode(p_mode text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $use$
BEGIN
  IF p_mode = 'signed' THEN
    -- Signed mode: the context is '<tenant uuid>.<expiry epoch>[.<route epoch>].<hex HMAC-SHA256>'
    -- signed with a key the app role cannot read. Injected SQL can set the setting, but not forge a
    -- valid value. The route epoch (absent: 0, the default route) must match where the tenant lives
    -- in this database (tenantry.local_tenants, mirrored in tenantry_private.context_gate): a stale
    -- router fails with TR003, a frozen tenant TR004. A tenant held here as suspended fails with
    -- TR005, a deleted one TR006 (tenantry.inactive_tenants, mirrored there too).
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
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
  -- lower-case hex only: the hold and the route are looked up by the text of the id
  IF length(v) < 103 OR length(v) > 134 OR substr(v, 37, 1) <> '.' OR substr(v, length(v) - 64, 1) <> '.'
     OR v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$' THEN
    RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
  END IF;
  -- one lookup: the proof with the current key, and this tenant's gate (text key: no cast of unproven input)
  SELECT encode(sha256(c.opad || sha256(c.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64) AS signed,
         c.serves_default, g.state, g.epoch, g.hold
    INTO k
    FROM tenantry_private.context_key c LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = left(v, 36);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  IF NOT k.signed THEN
    -- while a rotation's overlap lasts, the previous key too (a value signed by an app instance
    -- that still has the old secret): its own statement, prepared and run only on a mismatch
    IF NOT EXISTS (SELECT FROM tenantry_private.context_key c
                    WHERE c.previous_until > now()
                      AND encode(sha256(c.previous_opad || sha256(c.previous_ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64)) THEN
      RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
    END IF;
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  -- a suspended or deleted tenant: only after the proof, so a forged value learns nothing
  IF k.hold IS NOT NULL THEN
    PERFORM tenantry.refuse_inactive(k.hold);
  END IF;
  -- the route epoch: absent (three parts) is 0, the default route
  IF k.state IS NULL THEN
    IF NOT k.serves_default OR (split_part(v, '.', 4) <> '' AND split_part(v, '.', 3)::bigint <> 0) THEN
      PERFORM tenantry.refuse_route('moved');
    END IF;
  ELSIF k.state <> 'active' OR k.epoch <> (CASE WHEN split_part(v, '.', 4) = '' THEN 0 ELSE split_part(v, '.', 3)::bigint END) THEN
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
  IF length(v) < 103 OR length(v) > 134 OR substr(v, 37, 1) <> '.' OR substr(v, length(v) - 64, 1) <> '.'
     OR v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$' THEN
    RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
  END IF;
  SELECT encode(sha256(c.opad || sha256(c.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64) AS signed,
         g.hold
    INTO k
    FROM tenantry_private.context_key c LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = left(v, 36);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  IF NOT k.signed THEN
    IF NOT EXISTS (SELECT FROM tenantry_private.context_key c
                    WHERE c.previous_until > now()
                      AND encode(sha256(c.previous_opad || sha256(c.previous_ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') = right(v, 64)) THEN
      RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
    END IF;
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  IF k.hold = 'deleted' THEN
    PERFORM tenantry.refuse_inactive(k.hold);
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
