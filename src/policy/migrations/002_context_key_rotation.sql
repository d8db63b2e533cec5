-- core 002: context secret rotation with an overlap. `tenantry rotate context-secret` keeps the
-- previous key next to the new one until previous_until: values signed with either verify, so app
-- instances still signing with the old secret keep working while the new one rolls out.
ALTER TABLE tenantry_private.context_key
  ADD COLUMN IF NOT EXISTS previous_ipad bytea CHECK (length(previous_ipad) = 64),
  ADD COLUMN IF NOT EXISTS previous_opad bytea CHECK (length(previous_opad) = 64),
  ADD COLUMN IF NOT EXISTS previous_until timestamptz;
ALTER TABLE tenantry_private.context_key DROP CONSTRAINT IF EXISTS context_key_previous_complete;
ALTER TABLE tenantry_private.context_key ADD CONSTRAINT context_key_previous_complete
  CHECK ((previous_ipad IS NULL) = (previous_opad IS NULL) AND (previous_ipad IS NULL) = (previous_until IS NULL));

-- the signed functions again, with the previous key's check (unsigned mode is unchanged)
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
  SELECT c.ipad, c.opad, c.previous_ipad, c.previous_opad, c.previous_until, l.state, l.epoch, r.serves_default INTO k
    FROM tenantry_private.context_key c CROSS JOIN tenantry.local_route r
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(v, 36);
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
  SELECT c.ipad, c.opad, c.previous_ipad, c.previous_opad, c.previous_until INTO k FROM tenantry_private.context_key c;
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
