-- core 001: the tenant context (key, route check, context functions), the tenant catalog and the
-- registry of tables. The layout `tenantry install` created before the library schema was
-- versioned, and idempotent over it (CREATE ... IF NOT EXISTS, CREATE OR REPLACE): an install of
-- that era is brought here by running it again. Runs as the owner role.
CREATE TABLE IF NOT EXISTS tenantry_private.context_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  ipad bytea NOT NULL CHECK (length(ipad) = 64),
  opad bytea NOT NULL CHECK (length(opad) = 64),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON ALL TABLES IN SCHEMA tenantry_private FROM PUBLIC, :TENANTRY_APP_ROLE;
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
REVOKE ALL ON tenantry.local_tenants FROM PUBLIC, :TENANTRY_APP_ROLE;
-- whether this database serves tenants on the default route (epoch 0: no placement): only the
-- home cluster's shared database does; Placements turns it off in every other database it
-- places a tenant in, so a misrouted default-route statement there is refused, not served
CREATE TABLE IF NOT EXISTS tenantry.local_route (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  serves_default boolean NOT NULL DEFAULT true
);
INSERT INTO tenantry.local_route DEFAULT VALUES ON CONFLICT (id) DO NOTHING;
REVOKE ALL ON tenantry.local_route FROM PUBLIC, :TENANTRY_APP_ROLE;
-- only the owner reads them (through the SECURITY DEFINER checks): where tenants live is nobody
-- else's business; RLS on with no policy, like every table nobody configured
ALTER TABLE tenantry.local_tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenantry.local_route ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS local_tenants_read ON tenantry.local_tenants;
DROP POLICY IF EXISTS local_route_read ON tenantry.local_route;
REVOKE ALL ON tenantry.local_tenants FROM :TENANTRY_APP_ROLE;

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
GRANT EXECUTE ON FUNCTION tenantry.refuse_route(text) TO :TENANTRY_APP_ROLE;
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
  IF k.state IS NULL THEN
    IF route <> 0 OR NOT k.serves_default THEN
      PERFORM tenantry.refuse_route('moved');
    END IF;
  ELSIF k.state <> 'active' OR k.epoch <> route THEN
    PERFORM tenantry.refuse_route(k.state);
  END IF;
END
$fn$;
CREATE OR REPLACE FUNCTION tenantry.enter_route(p_context text, p_search_path text) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  PERFORM pg_catalog.set_config('tenantry.context', p_context, true);
  IF p_search_path IS NOT NULL AND p_search_path <> '' THEN
    PERFORM pg_catalog.set_config('search_path', p_search_path, true);
  END IF;
  PERFORM tenantry.check_route(p_context);
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) TO :TENANTRY_APP_ROLE;
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
  ELSIF (SELECT p.prolang FROM pg_proc p WHERE p.oid = 'tenantry.current_tenant_id()'::regprocedure) <> (SELECT oid FROM pg_language WHERE lanname = 'sql') THEN
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT CASE WHEN strpos(current_setting('tenantry.context', true), '.') > 0 THEN tenantry.refuse_route('moved')
              ELSE nullif(current_setting('tenantry.context', true), '')::uuid END
$body$$q$;
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
-- tenantry.home_tenant_id(): the tenant in context, proven like current_tenant_id() (signature and
-- expiry in signed mode) but WITHOUT the route check. The route check exists because a tenant's
-- rows move: a statement sent on a stale route must not read or write the copy a move left behind.
-- Some tenant tables never move: Tenantry's identity tables (sessions, API keys, grants, audit log)
-- and the application's pinned tables (tenantry.pin_tenant_table), which stay in the home database
-- whatever the tenant's tier. Their policies use it, so the control plane keeps working for a
-- tenant that lives in its own schema, database or cluster.
--
-- The context functions of both modes: tenantry.use_context_mode() (re)creates
-- tenantry.current_tenant_id() and tenantry.home_tenant_id() for the mode install records in
-- tenantry.meta (every install calls it, so switching modes is one install away).
CREATE OR REPLACE FUNCTION tenantry.use_context_mode(p_mode text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $use$
BEGIN
  IF p_mode = 'signed' THEN
    -- Signed mode: the context is '<tenant uuid>.<expiry epoch>[.<route epoch>].<hex HMAC-SHA256>'
    -- signed with a key the app role cannot read. Injected SQL can set the setting, but not forge a
    -- valid value. The route epoch (absent: 0, the default route) must match where the tenant lives
    -- in this database (tenantry.local_tenants): a stale router fails with TR003, a frozen tenant TR004.
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
  SELECT c.ipad, c.opad, l.state, l.epoch, r.serves_default INTO k
    FROM tenantry_private.context_key c CROSS JOIN tenantry.local_route r
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(v, 36);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') <> right(v, 64) THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
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
  SELECT c.ipad, c.opad INTO k FROM tenantry_private.context_key c;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;
  IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') <> right(v, 64) THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
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
REVOKE ALL ON FUNCTION tenantry.current_tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.current_tenant_id() TO :TENANTRY_APP_ROLE;
REVOKE ALL ON FUNCTION tenantry.home_tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.home_tenant_id() TO :TENANTRY_APP_ROLE;
CREATE OR REPLACE FUNCTION tenantry.is_moving() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT coalesce(current_setting('tenantry.moving', true), '') = 'on'
     AND (session_user::text = (SELECT m.value FROM tenantry.meta m WHERE m.key = 'owner_role')
          OR coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false))
$fn$;
REVOKE ALL ON FUNCTION tenantry.is_moving() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.is_moving() TO :TENANTRY_APP_ROLE;
-- control plane: the tenant catalog
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
);
CREATE INDEX IF NOT EXISTS tenants_status_idx ON tenantry.tenants (status);
ALTER TABLE tenantry.tenants ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenantry_self ON tenantry.tenants;
CREATE POLICY tenantry_self ON tenantry.tenants FOR SELECT USING (id = (SELECT tenantry.home_tenant_id()));
REVOKE ALL ON tenantry.tenants FROM PUBLIC, :TENANTRY_APP_ROLE;
GRANT SELECT ON tenantry.tenants TO :TENANTRY_APP_ROLE;
-- the registry of tables: tenant-owned or global; anything else is unreachable
CREATE TABLE IF NOT EXISTS tenantry.registered_tables (
  relid regclass PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('tenant', 'global')),
  tenant_column name,
  writable boolean NOT NULL DEFAULT false,
  registered_at timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'tenant') = (tenant_column IS NOT NULL))
);
-- a pinned tenant table stays in its database when a tenant moves (TenantMover skips it);
-- a column added after the table's first release: ADD COLUMN IF NOT EXISTS upgrades an installed registry
ALTER TABLE tenantry.registered_tables ADD COLUMN IF NOT EXISTS pinned boolean NOT NULL DEFAULT false;
REVOKE ALL ON tenantry.registered_tables, tenantry.meta FROM PUBLIC, :TENANTRY_APP_ROLE;
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
$fn$;
REVOKE ALL ON FUNCTION tenantry.register_tenant_table(regclass, name), tenantry.register_global_table(regclass, boolean), tenantry.unregister_table(regclass), tenantry.grant_column_sequences(regclass, text), tenantry.pin_tenant_table(regclass, boolean) FROM PUBLIC;
