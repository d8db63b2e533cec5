-- core 006: the context checks every statement runs, at the cost of reading a setting. Until 005
-- signed mode's tenantry.current_tenant_id() was a PL/pgSQL SECURITY DEFINER function with a
-- `SET search_path` clause, paid once per statement: the PL/pgSQL call, the GUC save and restore
-- of the SET clause, and its lookups. The same checks (format, HMAC with the current or, during a
-- rotation's overlap, the previous key, expiry, the inactive-tenant hold, the route) are now
-- SQL-standard bodies (`BEGIN ATOMIC`, PostgreSQL 14+): parsed once, when created, every name
-- (tables, functions, operators, types) bound to its object then. No run-time search_path can
-- redirect them, so they need no SET clause, and a caller's temporary or public objects cannot
-- shadow anything they use (test/isolation/context-hijack.test.ts tries). They are created by
-- tenantry.use_context_mode(), whose own search_path is pinned to pg_catalog, pg_temp, so even the
-- creation resolves nothing through an attacker's schema. Errors and SQLSTATEs are unchanged
-- (TR001 malformed, bad signature, expired; TR002 no key; TR003/TR004 route; TR005/TR006 hold):
-- they come from small PL/pgSQL helpers that only the failing branches reach.
--
-- The one-row tables (the key, the local route) are read through `LIMIT 1` sub-selects: a body is
-- planned without their statistics, and a join of never-analysed tables can be estimated above
-- jit_above_cost, which on a server with JIT (PostgreSQL 15 from Debian, for one) compiled every
-- call, about a second each. Estimated this way the body stays far below any JIT threshold.
--
-- The route check of RoutedTenantPool's prefix (tenantry.enter_route, tenantry.check_route) is
-- rewritten the same way: same refusals, in the same statement, without a PL/pgSQL call.

-- the failing branches of the signed checks (the app role cannot call it; the definer bodies do)
-- STABLE, not IMMUTABLE: never folded (and so raised) while a statement is planned
CREATE OR REPLACE FUNCTION tenantry_private.refuse_context(p_reason text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_reason = 'no key' THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  ELSIF p_reason = 'signature' THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  ELSIF p_reason = 'expired' THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.refuse_context(text) FROM PUBLIC;

-- the route check (with the hold) of unsigned mode and of RoutedTenantPool's prefix
CREATE OR REPLACE FUNCTION tenantry.check_route(p_context text) RETURNS void
LANGUAGE sql STABLE SECURITY DEFINER
BEGIN ATOMIC
  -- signed: <id>.<expiry>[.<route>].<hmac>; unsigned: <id>[.<route>]
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN i.status IS NOT NULL THEN tenantry.refuse_inactive(i.status)
    WHEN l.state IS NULL THEN
      CASE WHEN c.route <> 0 OR NOT coalesce(r.serves_default, false) THEN tenantry.refuse_route('moved') END
    WHEN l.state <> 'active' OR l.epoch <> c.route THEN tenantry.refuse_route(l.state)
  END
    FROM (SELECT p_context AS v,
                 CASE array_length(string_to_array(p_context, '.'), 1)
                   WHEN 4 THEN split_part(p_context, '.', 3)::bigint
                   WHEN 2 THEN split_part(p_context, '.', 2)::bigint
                   ELSE 0 END AS route) c
    LEFT JOIN (SELECT lr.serves_default FROM tenantry.local_route lr LIMIT 1) r ON true
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(c.v, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(c.v, 36);
END;
-- the prefix of RoutedTenantPool: context, the schema tier's search path (transaction-locally),
-- and the route check, in the one statement the prefix already was
CREATE OR REPLACE FUNCTION tenantry.enter_route(p_context text, p_search_path text) RETURNS void
LANGUAGE sql VOLATILE
BEGIN ATOMIC
  SELECT set_config('tenantry.context', p_context, true),
         CASE WHEN p_search_path IS NOT NULL AND p_search_path <> '' THEN set_config('search_path', p_search_path, true) END,
         tenantry.check_route(p_context);
END;
REVOKE ALL ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.check_route(text), tenantry.enter_route(text, text) TO :TENANTRY_APP_ROLE;

-- the context functions of both modes again (unsigned mode is unchanged)
CREATE OR REPLACE FUNCTION tenantry.use_context_mode(p_mode text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $use$
BEGIN
  IF p_mode = 'signed' THEN
    -- Signed mode: the context is '<tenant uuid>.<expiry epoch>[.<route epoch>].<hex HMAC-SHA256>'
    -- signed with a key the app role cannot read. Injected SQL can set the setting, but not forge a
    -- valid value. The route epoch (absent: 0, the default route) must match where the tenant lives
    -- in this database (tenantry.local_tenants): a stale router fails with TR003, a frozen tenant TR004.
    -- A tenant held here as suspended fails with TR005, a deleted one TR006 (tenantry.inactive_tenants),
    -- only after the proof, so a forged value learns nothing. CASE takes its branches in order.
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN length(c.v) NOT BETWEEN 103 AND 134 OR c.v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$'
         OR substr(c.v, length(c.v) - 64, 1) <> '.'
      THEN tenantry_private.refuse_context('malformed')
    WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
    -- the current key first; while a rotation's overlap lasts, the previous key too
    WHEN encode(sha256(k.opad || sha256(k.ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') <> right(c.v, 64)
         AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
                  AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') = right(c.v, 64))
      THEN tenantry_private.refuse_context('signature')
    WHEN split_part(c.v, '.', 2)::bigint < extract(epoch FROM now()) THEN tenantry_private.refuse_context('expired')
    WHEN i.status IS NOT NULL THEN tenantry.refuse_inactive(i.status)
    WHEN l.state IS NULL THEN
      CASE WHEN CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END <> 0
                OR NOT coalesce(r.serves_default, false)
           THEN tenantry.refuse_route('moved') ELSE left(c.v, 36)::uuid END
    WHEN l.state <> 'active'
         OR l.epoch <> CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END
      THEN tenantry.refuse_route(l.state)
    ELSE left(c.v, 36)::uuid
  END
    FROM (SELECT current_setting('tenantry.context', true) AS v) c
    LEFT JOIN (SELECT ck.ipad, ck.opad, ck.previous_ipad, ck.previous_opad, ck.previous_until
                 FROM tenantry_private.context_key ck LIMIT 1) k ON true
    LEFT JOIN (SELECT lr.serves_default FROM tenantry.local_route lr LIMIT 1) r ON true
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(c.v, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(c.v, 36);
END$q$;
    -- the tenant without the route check: for tables that never move (identity, pinned tables)
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN length(c.v) NOT BETWEEN 103 AND 134 OR c.v !~ '^[0-9a-f-]+\.[0-9]+(\.[0-9]+)?\.[0-9a-f]+$'
         OR substr(c.v, length(c.v) - 64, 1) <> '.'
      THEN tenantry_private.refuse_context('malformed')
    WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
    WHEN encode(sha256(k.opad || sha256(k.ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') <> right(c.v, 64)
         AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
                  AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') = right(c.v, 64))
      THEN tenantry_private.refuse_context('signature')
    WHEN split_part(c.v, '.', 2)::bigint < extract(epoch FROM now()) THEN tenantry_private.refuse_context('expired')
    WHEN i.status = 'deleted' THEN tenantry.refuse_inactive(i.status)
    ELSE left(c.v, 36)::uuid
  END
    FROM (SELECT current_setting('tenantry.context', true) AS v) c
    LEFT JOIN (SELECT ck.ipad, ck.opad, ck.previous_ipad, ck.previous_opad, ck.previous_until
                 FROM tenantry_private.context_key ck LIMIT 1) k ON true
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(c.v, 36);
END$q$;
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
