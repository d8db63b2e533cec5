-- core 008: the signed check decides a value that passes in ONE query (issue 15). Measured
-- (docs/benchmarks.md, "The signed check's fast path"): per call, core 007's check spent most of
-- its time on work that is per transaction, and every statement is one: each PL/pgSQL expression
-- (the declaration, each IF) set up afresh, the lookup's query executed with the value bound as a
-- parameter. Here the lookup reads the setting itself, so PL/pgSQL binds no parameter and
-- PostgreSQL's plan cache keeps one generic plan of it (bound to a parameter, it re-planned it:
-- 40 µs); its one expression decides the passing case: the HMAC with the current key, the format,
-- unexpired, no hold, the route. A value it does not pass (none, malformed, forged, the previous
-- key of a rotation's overlap, expired, held, another route) runs core 007's steps (with the
-- fixes below): the same errors, codes and order. What passes here also passes there: a proof
-- with the current key, then the same tests on the same parts of the value (the length bounds on
-- octets: a value outside ASCII fails the pattern anyway); the format pattern here reads the value
-- without its 64-character MAC (on the whole value it costs ≈ 3 µs per call), which the HMAC's hex
-- digest matches or not.
-- Found by the try-out of this migration, closed here for both paths: (1) an id in another
-- spelling that uuid_in accepts (the hyphens moved: 'f025-dc25-…'), signed with the secret by a
-- signer that is not Tenantry's, found no hold and no route row (they are looked up by the text of
-- the id) and passed for a suspended or moved tenant, in core 007 too: the id must be the
-- canonical text, checked with translate() (a bounded regex costs ≈ 18 µs per call); (2) the
-- patterns hold no backslash ('[.]' for '\.'): a session with standard_conforming_strings off when
-- a function is first compiled read '\.' as '.'; (3) the gate has forced row security and no
-- policy, so the checks read it only while their owner has BYPASSRLS; without it every tenant
-- looked unheld and on its default route (fail-open): a policy for the owner role now.
DROP POLICY IF EXISTS context_gate_owner ON tenantry_private.context_gate;
CREATE POLICY context_gate_owner ON tenantry_private.context_gate TO :TENANTRY_OWNER_ROLE USING (true) WITH CHECK (true);
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
  v text;
  k record;
  passed uuid;
BEGIN
  -- the fast path: no PL/pgSQL variable in this query (one generic plan); casts only after the
  -- proof and the format matched; the setting read once (OFFSET 0 keeps the sub-select a node)
  SELECT CASE
    WHEN encode(sha256(c.opad || sha256(c.ipad || convert_to(left(s.v, -65), 'UTF8'))), 'hex') = right(s.v, 64)
     AND octet_length(s.v) BETWEEN 103 AND 134 AND substr(s.v, 37, 1) = '.'
     AND translate(left(s.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000'
     AND left(s.v, -64) ~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.]$'
    THEN CASE
      WHEN split_part(s.v, '.', 2)::bigint >= extract(epoch FROM now())
       AND CASE WHEN g.tenant_key IS NULL THEN c.serves_default AND split_part(s.v, '.', 4) = ''
                ELSE g.hold IS NULL AND g.state = 'active'
                 AND g.epoch = CASE WHEN split_part(s.v, '.', 4) = '' THEN 0 ELSE split_part(s.v, '.', 3)::bigint END
           END
      THEN left(s.v, 36)::uuid
    END
  END
    INTO passed
    FROM (SELECT current_setting('tenantry.context', true) AS v OFFSET 0) s
    LEFT JOIN tenantry_private.context_key c ON true
    LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = left(s.v, 36);
  IF passed IS NOT NULL THEN
    RETURN passed;
  END IF;
  -- anything else: core 007's steps as they were
  v := current_setting('tenantry.context', true);
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  -- the canonical id only (lower-case hex, the hyphens where uuid_out puts them): the hold and the
  -- route are looked up by the text of the id, so another spelling of it must not pass
  IF length(v) < 103 OR length(v) > 134 OR substr(v, 37, 1) <> '.' OR substr(v, length(v) - 64, 1) <> '.'
     OR v !~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.][0-9a-f]+$'
     OR translate(left(v, 36), '0123456789abcdef', '0000000000000000') <> '00000000-0000-0000-0000-000000000000' THEN
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
  v text;
  k record;
  passed uuid;
BEGIN
  -- the fast path: no PL/pgSQL variable in this query (one generic plan); casts only after the
  -- proof and the format matched; the setting read once (OFFSET 0 keeps the sub-select a node)
  SELECT CASE
    WHEN encode(sha256(c.opad || sha256(c.ipad || convert_to(left(s.v, -65), 'UTF8'))), 'hex') = right(s.v, 64)
     AND octet_length(s.v) BETWEEN 103 AND 134 AND substr(s.v, 37, 1) = '.'
     AND translate(left(s.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000'
     AND left(s.v, -64) ~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.]$'
    THEN CASE
      WHEN split_part(s.v, '.', 2)::bigint >= extract(epoch FROM now())
       AND (g.hold IS NULL OR g.hold <> 'deleted')
      THEN left(s.v, 36)::uuid
    END
  END
    INTO passed
    FROM (SELECT current_setting('tenantry.context', true) AS v OFFSET 0) s
    LEFT JOIN tenantry_private.context_key c ON true
    LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = left(s.v, 36);
  IF passed IS NOT NULL THEN
    RETURN passed;
  END IF;
  -- anything else: core 007's steps as they were
  v := current_setting('tenantry.context', true);
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  -- the format and proof of current_tenant_id(), without its route check
  IF length(v) < 103 OR length(v) > 134 OR substr(v, 37, 1) <> '.' OR substr(v, length(v) - 64, 1) <> '.'
     OR v !~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.][0-9a-f]+$'
     OR translate(left(v, 36), '0123456789abcdef', '0000000000000000') <> '00000000-0000-0000-0000-000000000000' THEN
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
