-- core 009: a proven value is remembered (issue 15). Measured (docs/benchmarks.md, "Proofs
-- remembered"): core 008's check, the HMAC and the tests of the value with the key and the gate,
-- costs ≈ 20 µs per statement, while the same value is sent with thousands of statements (a pool
-- reuses a tenant's signed value for up to a minute). Here the pool registers a value once
-- (tenantry.register_contexts, in a short transaction of its own, many values at once): the whole check runs, and a
-- value that passes it is remembered by its SHA-256 with its tenant and expiry. The signed
-- functions first look the setting's hash up (one index probe of a private table): found and
-- unexpired, that tenant; anything else runs core 008's check unchanged (same errors, codes, order).
-- A remembered proof stops serving in the transaction of any change that could make the check
-- refuse its value. For one tenant (its gate row: a hold, a route or its epoch,
-- refresh_context_gate) the refresh deletes the tenant's proofs after the tenant's lock: its row
-- of tenantry_private.context_proof_marks, which the refresh writes first and a registration
-- locks too (without waiting, and only for a value whose HMAC is right). The row is in a private
-- table, so no other tenant's session can hold it (an advisory lock, as before, every role could
-- take: another tenant could hold up this one's hold or move). A registration that began before
-- has committed and is seen; one made in a REPEATABLE READ or SERIALIZABLE transaction that began
-- before a registration cannot see it, so the registration writes that row too, and such a
-- refresh fails with 40001 (retry) instead of missing it. The refresh waits for the row 100 ms at
-- most: a registration left open (injected SQL with a value of the tenant) gets, instead, a new
-- generation for every proof (below), so no session holds up a hold or move. For all tenants (the key: install, a rotation;
-- every gate row: rebuild_context_gate, the default-route flag) the key row's proof_generation
-- changes (from a sequence), each proof carries the generation it was made under and the lookup
-- compares the two: at any isolation level, without waiting for registrations or making them wait.
CREATE TABLE IF NOT EXISTS tenantry_private.context_proofs (
  value_sha256 bytea PRIMARY KEY,
  -- the id's text, as the gate's key (the canonical form: registration checks it)
  tenant_key text NOT NULL,
  proven_tenant uuid NOT NULL,
  -- the value's own expiry (epoch seconds)
  expires_at bigint NOT NULL,
  -- the key row's proof_generation when it was proven
  generation bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS context_proofs_tenant ON tenantry_private.context_proofs (tenant_key);
REVOKE ALL ON tenantry_private.context_proofs FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.context_proofs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS context_proofs_owner ON tenantry_private.context_proofs;
CREATE POLICY context_proofs_owner ON tenantry_private.context_proofs TO :TENANTRY_OWNER_ROLE USING (true) WITH CHECK (true);
-- one row per tenant, written by every registration and every refresh of the tenant (see above),
-- and one keyed 'refresh <tenant>' that orders the tenant's refreshes
CREATE TABLE IF NOT EXISTS tenantry_private.context_proof_marks (
  tenant_key text PRIMARY KEY,
  writes bigint NOT NULL
);
REVOKE ALL ON tenantry_private.context_proof_marks FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry_private.context_proof_marks ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS context_proof_marks_owner ON tenantry_private.context_proof_marks;
CREATE POLICY context_proof_marks_owner ON tenantry_private.context_proof_marks TO :TENANTRY_OWNER_ROLE USING (true) WITH CHECK (true);
-- the generation of the proofs: a new value with every write of the key row
CREATE SEQUENCE IF NOT EXISTS tenantry_private.proof_generation;
REVOKE ALL ON SEQUENCE tenantry_private.proof_generation FROM PUBLIC, :TENANTRY_APP_ROLE;
-- (no volatile default: a Citus reference table would refuse it; null there, where proofs are not used)
ALTER TABLE tenantry_private.context_key ADD COLUMN IF NOT EXISTS proof_generation bigint;
CREATE OR REPLACE FUNCTION tenantry.context_key_generation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  NEW.proof_generation := nextval('tenantry_private.proof_generation');
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.context_key_generation() FROM PUBLIC, :TENANTRY_APP_ROLE;

-- core 007's refresh and rebuild: the refresh forgets the tenant's proofs, the rebuild starts a
-- new generation
CREATE OR REPLACE FUNCTION tenantry.refresh_context_gate(p_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  outer_timeout text := current_setting('lock_timeout');
  busy boolean := false;
BEGIN
  -- the refreshes of one tenant one at a time, each after the one before has committed (it reads
  -- the tables that one wrote; in REPEATABLE READ, one committed since this snapshot: 40001), as
  -- long as it takes: a row of the marks table that no registration takes (its key is no id)
  INSERT INTO tenantry_private.context_proof_marks AS m (tenant_key, writes) VALUES ('refresh ' || p_key, 1)
  ON CONFLICT (tenant_key) DO UPDATE SET writes = m.writes + 1;
  -- the tenant's lock: its marks row, written first (one made since a REPEATABLE READ snapshot of
  -- this transaction by a registration: 40001). A registration holds it for milliseconds, but in
  -- a transaction of the app role's, which injected SQL can keep open with a value of the tenant
  -- it holds: waited for 100 ms at most (the subtransaction's abort restores lock_timeout)
  BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', '100ms', true);
    INSERT INTO tenantry_private.context_proof_marks AS m (tenant_key, writes) VALUES (p_key, 1)
    ON CONFLICT (tenant_key) DO UPDATE SET writes = m.writes + 1;
    PERFORM pg_catalog.set_config('lock_timeout', outer_timeout, true);
  EXCEPTION WHEN lock_not_available THEN
    busy := true;
  END;
  DELETE FROM tenantry_private.context_gate g WHERE g.tenant_key = p_key;
  INSERT INTO tenantry_private.context_gate (tenant_key, state, epoch, hold)
  SELECT p_key, l.state, l.epoch, i.status
    FROM (SELECT) one
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = p_key
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = p_key
   WHERE l.tenant_key IS NOT NULL OR i.tenant_key IS NOT NULL;
  IF NOT busy THEN
    -- after the lock, so a registration that began before it has committed and is seen here
    DELETE FROM tenantry_private.context_proofs p WHERE p.tenant_key = p_key;
  ELSE
    -- a registration of the tenant still open: a new generation for every proof instead (the key
    -- row's trigger; the open registration's proofs carry the generation its snapshot read, and
    -- the trigger tidies the others away, leaving the rows it holds), at any isolation level
    UPDATE tenantry_private.context_key k SET proof_generation = 0;
  END IF;
END
$fn$;
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
  -- every proof was made under the gate rows replaced here: a new generation (the key row's
  -- trigger gives it, and tidies the others away)
  UPDATE tenantry_private.context_key k SET proof_generation = 0;
END
$fn$;
-- the key row written (install, a rotation, the route flag, a rebuild): a new generation, and the
-- proofs of others tidied away (only tidying: the lookup compares generations); rows a
-- registration in progress is removing are skipped, not waited for
CREATE OR REPLACE FUNCTION tenantry.context_key_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  DELETE FROM tenantry_private.context_proofs p
   WHERE p.ctid IN (SELECT q.ctid FROM tenantry_private.context_proofs q
                     WHERE q.generation IS DISTINCT FROM (SELECT c.proof_generation FROM tenantry_private.context_key c)
                       FOR UPDATE SKIP LOCKED);
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.context_key_changed() FROM PUBLIC, :TENANTRY_APP_ROLE;
DO $do$
BEGIN
  IF NOT tenantry.is_citus_table('tenantry_private.context_key') THEN
    DROP TRIGGER IF EXISTS context_key_generation ON tenantry_private.context_key;
    CREATE TRIGGER context_key_generation BEFORE INSERT OR UPDATE ON tenantry_private.context_key
      FOR EACH ROW EXECUTE FUNCTION tenantry.context_key_generation();
    DROP TRIGGER IF EXISTS context_key_proofs ON tenantry_private.context_key;
    CREATE TRIGGER context_key_proofs AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry_private.context_key
      FOR EACH STATEMENT EXECUTE FUNCTION tenantry.context_key_changed();
    UPDATE tenantry_private.context_key k SET proof_generation = 0; -- the trigger gives the first generation
  END IF;
END
$do$;

-- Registers signed values the pool is about to send with many statements (up to 1,000 in one
-- call, each tested on its own, all in seven statements): how many it remembered (or found remembered),
-- -1 when not in this transaction (not READ COMMITTED, or read only), null
-- where this database does not use remembered proofs (unsigned mode, Citus). Does not wait for
-- a change: a value whose tenant is being changed (or registered by another call), or whose proof
-- a key change in progress is tidying away, is skipped (a concurrent first insert of the same
-- value, by another registration, is waited for); the
-- tenant's lock is taken only for a value signed with the current key. Only a value that passes the whole
-- check is remembered, so calling it with any other value (injected SQL can) changes nothing.
-- Generic plans (planned once per session): the values are parameters of the same statements.
CREATE OR REPLACE FUNCTION tenantry.register_contexts(p_values text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
-- the plans are made once per session, often while the proofs table is still empty: a sequential
-- scan planned then would stay, and cost more with every proof added (measured: the tidy's
-- DELETE). Before PostgreSQL 18 a disabled scan still planned (the one-row key table's) costs
-- 10^10, past jit_above_cost: JIT would compile every statement (≈ 0.2 s each, measured)
SET enable_seqscan = off
SET jit = off
AS $fn$
DECLARE
  fresh text[];
  known integer;
  signed text[];
  outer_timeout text := current_setting('lock_timeout');
  locked text[];
  key_generation bigint;
  remembered integer;
BEGIN
  IF coalesce((SELECT m.value FROM tenantry.meta m WHERE m.key = 'context_mode'), 'signed') <> 'signed'
     OR (to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL
         AND (tenantry.is_citus_table('tenantry_private.context_key') OR tenantry.is_citus_table('tenantry.local_tenants'))) THEN
    RETURN NULL;
  END IF;
  IF p_values IS NULL OR cardinality(p_values) > 1000 THEN
    RETURN 0;
  END IF;
  -- not in this transaction: -1, so a pool whose sessions default to another isolation level or
  -- to read only (a standby) can say why nothing is remembered
  IF current_setting('transaction_isolation') <> 'read committed' OR current_setting('transaction_read_only') = 'on' THEN
    RETURN -1;
  END IF;
  -- (synchronous_commit stays as it is: with it off, the WAL of these writes is flushed later by
  -- whichever backend evicts their pages, an app statement's: measured slower at 10M rows)
  -- 0: a value remembered already, under the current generation and unexpired, is counted and
  -- left alone: app instances with the same secret send the same value for a tenant (the signer
  -- aligns its expiry), and each registers it; the first proves it, the others find it here, one
  -- probe each instead of the whole check, the locks and the writes (a refresh of its tenant
  -- deletes it, a new generation retires it: it answers exactly when the lookup would)
  SELECT coalesce(array_agg(u.v) FILTER (WHERE NOT u.known), '{}'), count(*) FILTER (WHERE u.known)
    INTO fresh, known
    FROM (SELECT x.v, EXISTS (SELECT FROM tenantry_private.context_proofs p
                               WHERE p.value_sha256 = sha256(convert_to(x.v, 'UTF8'))
                                 AND p.expires_at >= date_part('epoch', now())
                                 AND p.generation = (SELECT c.proof_generation FROM tenantry_private.context_key c)) AS known
            FROM (SELECT DISTINCT y.v FROM unnest(p_values) AS y(v) WHERE y.v IS NOT NULL) x) u;
  -- Set-based, six more statements for the whole batch (one value at a time cost ≈ 0.1 ms each:
  -- docs/benchmarks.md). 1: the distinct values of the right shape (nothing below can fail on
  -- one: numbers of at most 18 digits fit bigint) signed with the current key: only these take a
  -- tenant's lock, so a forged value takes none
  -- (`fresh` is distinct and without nulls already: statement 0)
  SELECT array_agg(u.v) INTO signed
    FROM unnest(fresh) AS u(v)
    JOIN tenantry_private.context_key c
      ON encode(sha256(c.opad || sha256(c.ipad || convert_to(left(u.v, -65), 'UTF8'))), 'hex') = right(u.v, 64)
   WHERE octet_length(u.v) BETWEEN 103 AND 134
     AND length(split_part(u.v, '.', 2)) <= 18
     AND (split_part(u.v, '.', 4) = '' OR length(split_part(u.v, '.', 3)) <= 18)
     -- and unexpired, of a canonical id: an old value (leaked, say) takes no lock
     AND CASE WHEN split_part(u.v, '.', 2) ~ '^[0-9]+$' THEN split_part(u.v, '.', 2)::bigint END >= extract(epoch FROM now())
     AND translate(left(u.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000';
  IF signed IS NULL THEN
    RETURN known;
  END IF;
  -- the tenants' locks (their marks rows, see context_proof_marks): a tenant's first row made
  -- here (an existing row, even one being written, is left alone: ON CONFLICT would wait for its
  -- writer), then every row tried, never waited for (the refresh of a tenant in progress holds
  -- its row: the tenant is skipped). A concurrent first insert of a row (a refresh's, or a
  -- registration's left open) is waited for 10 ms at most: then no tenant's first row is made
  -- this time (the subtransaction's abort restores lock_timeout)
  BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', '10ms', true);
    INSERT INTO tenantry_private.context_proof_marks (tenant_key, writes)
    SELECT DISTINCT left(s.v, 36), 0 FROM unnest(signed) AS s(v)
     WHERE NOT EXISTS (SELECT FROM tenantry_private.context_proof_marks m WHERE m.tenant_key = left(s.v, 36))
    ON CONFLICT (tenant_key) DO NOTHING;
    PERFORM pg_catalog.set_config('lock_timeout', outer_timeout, true);
  EXCEPTION WHEN lock_not_available THEN
    NULL;
  END;
  SELECT array_agg(s.v) INTO locked
    FROM unnest(signed) AS s(v)
   WHERE left(s.v, 36) IN (SELECT m.tenant_key FROM tenantry_private.context_proof_marks m
                            WHERE m.tenant_key = ANY (ARRAY(SELECT left(t.v, 36) FROM unnest(signed) AS t(v)))
                              FOR UPDATE SKIP LOCKED);
  IF locked IS NULL THEN
    RETURN known;
  END IF;
  -- 2: a new statement, so a new snapshot (READ COMMITTED), taken after the locks: core 008's fast
  -- path on each value, with the generation read with the key it is proven with; the tenant's
  -- mark written (see context_proof_marks) and the proof remembered
  WITH passed AS MATERIALIZED (
    SELECT l.v,
      CASE
        WHEN encode(sha256(c.opad || sha256(c.ipad || convert_to(left(l.v, -65), 'UTF8'))), 'hex') = right(l.v, 64)
         AND octet_length(l.v) BETWEEN 103 AND 134 AND substr(l.v, 37, 1) = '.'
         AND translate(left(l.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000'
         AND left(l.v, -64) ~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.]$'
        THEN CASE
          WHEN split_part(l.v, '.', 2)::bigint >= extract(epoch FROM now())
           AND CASE WHEN g.tenant_key IS NULL THEN c.serves_default AND split_part(l.v, '.', 4) = ''
                    ELSE g.hold IS NULL AND g.state = 'active'
                     AND g.epoch = CASE WHEN split_part(l.v, '.', 4) = '' THEN 0 ELSE split_part(l.v, '.', 3)::bigint END
               END
          THEN left(l.v, 36)::uuid
        END
      END AS tenant,
      c.proof_generation AS generation
      FROM unnest(locked) AS l(v)
      LEFT JOIN tenantry_private.context_key c ON true
      -- one probe per value (the fence keeps it one: a join planned for the gate's unknown size scanned it)
      LEFT JOIN LATERAL (SELECT g.tenant_key, g.hold, g.state, g.epoch FROM tenantry_private.context_gate g
                          WHERE g.tenant_key = left(l.v, 36) OFFSET 0) g ON true
  ), passing AS MATERIALIZED (
    SELECT p.v, p.tenant, p.generation, sha256(convert_to(p.v, 'UTF8')) AS h
      FROM passed p WHERE p.tenant IS NOT NULL AND p.generation IS NOT NULL
  ), present AS MATERIALIZED (
    -- (= ANY of an array: one probe of the key per value. IN (sub-select) was planned as a hash
    -- join over the whole table's index, measured 2 ms a call at 6,400 proofs, growing with it)
    SELECT q.value_sha256 FROM tenantry_private.context_proofs q
     WHERE q.value_sha256 = ANY (ARRAY(SELECT x.h FROM passing x))
  ), taken AS MATERIALIZED (
    SELECT q.value_sha256 FROM tenantry_private.context_proofs q
     WHERE q.value_sha256 = ANY (ARRAY(SELECT x.h FROM passing x))
       FOR UPDATE SKIP LOCKED
  ), proven AS MATERIALIZED (
    -- a value whose row another transaction holds (a key change tidying it away) is left out:
    -- its insert would wait for that transaction
    SELECT x.v, x.tenant, x.generation, x.h FROM passing x
     WHERE x.h NOT IN (SELECT y.value_sha256 FROM present y) OR x.h IN (SELECT t.value_sha256 FROM taken t)
  ), marked AS (
    -- (rows this call locked above: written, so a refresh in a REPEATABLE READ transaction that
    -- began before fails with 40001)
    UPDATE tenantry_private.context_proof_marks m SET writes = m.writes + 1
     WHERE m.tenant_key IN (SELECT left(p.v, 36) FROM proven p)
  ), inserted AS (
    INSERT INTO tenantry_private.context_proofs AS q (value_sha256, tenant_key, proven_tenant, expires_at, generation)
    SELECT p.h, left(p.v, 36), p.tenant, split_part(p.v, '.', 2)::bigint, p.generation
      FROM proven p
    ON CONFLICT (value_sha256) DO UPDATE SET generation = EXCLUDED.generation, proven_tenant = EXCLUDED.proven_tenant,
      tenant_key = EXCLUDED.tenant_key, expires_at = EXCLUDED.expires_at
    RETURNING 1
  )
  SELECT count(*) INTO remembered FROM inserted;
  -- 3: the tenants' proofs that can no longer answer (expired, another generation), tidied away;
  -- rows another transaction is removing are skipped, not waited for (the generation read on its
  -- own: one key row, which the planner, never told so, would otherwise join as hundreds)
  SELECT c.proof_generation INTO key_generation FROM tenantry_private.context_key c;
  DELETE FROM tenantry_private.context_proofs p
   WHERE p.ctid = ANY (ARRAY(
     SELECT q.ctid FROM tenantry_private.context_proofs q
      WHERE q.tenant_key = ANY (ARRAY(SELECT left(l.v, 36) FROM unnest(locked) AS l(v)))
        AND (q.expires_at < extract(epoch FROM now()) OR q.generation IS DISTINCT FROM key_generation)
        FOR UPDATE SKIP LOCKED));
  RETURN remembered + known;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.register_contexts(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.register_contexts(text[]) TO :TENANTRY_APP_ROLE;
-- one value: true remembered, false not, null not used here
CREATE OR REPLACE FUNCTION tenantry.register_context(p_value text) RETURNS boolean
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT n > 0 FROM tenantry.register_contexts(ARRAY[p_value]) n
$fn$;
REVOKE ALL ON FUNCTION tenantry.register_context(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.register_context(text) TO :TENANTRY_APP_ROLE;
-- the signed functions: core 008's with the lookup of a remembered proof first
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
    -- Its plans are made once per session and kept until the tables are analysed again: one made
    -- while the proofs table (or the gate) was small scanned it whole, and hashed the setting
    -- again for every row (13.7 ms a call at 10,000 proofs, measured). enable_seqscan off keeps
    -- them on the indexes; jit off, as before PostgreSQL 18 a disabled scan still planned (the
    -- one-row key table's) costs 10^10, past jit_above_cost. The two cost ≈ 0.5 µs a call.
    EXECUTE $q$CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET jit = off
AS $fn$
DECLARE
  v text;
  k record;
  passed uuid;
BEGIN
  -- a value proven before (core 009): one probe of the remembered proofs, then nothing else.
  -- The generation is a sub-select (run once, after the probe found a row): as a join it was
  -- planned as a hash join, a hash table built with every statement (a fifth of the backend's
  -- time at 10,000 tenants, profiled). date_part is float8; extract's numeric (since PostgreSQL
  -- 14) costs microseconds a call
  SELECT p.proven_tenant INTO passed
    FROM tenantry_private.context_proofs p
   WHERE p.value_sha256 = sha256(convert_to(current_setting('tenantry.context', true), 'UTF8'))
     AND p.expires_at >= date_part('epoch', now())
     AND p.generation = (SELECT c.proof_generation FROM tenantry_private.context_key c);
  IF passed IS NOT NULL THEN
    RETURN passed;
  END IF;
  -- the fast path: no PL/pgSQL variable in this query (one generic plan); casts only after the
  -- proof and the format matched; the setting read once (OFFSET 0 keeps the sub-select a node)
  SELECT CASE
    WHEN encode(sha256(c.opad || sha256(c.ipad || convert_to(left(s.v, -65), 'UTF8'))), 'hex') = right(s.v, 64)
     AND octet_length(s.v) BETWEEN 103 AND 134 AND substr(s.v, 37, 1) = '.'
     AND translate(left(s.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000'
     AND left(s.v, -64) ~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.]$'
    THEN CASE
      WHEN split_part(s.v, '.', 2)::bigint >= date_part('epoch', now())
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
SET enable_seqscan = off
SET jit = off
AS $fn$
DECLARE
  v text;
  k record;
  passed uuid;
BEGIN
  -- a value proven before (core 009): one probe of the remembered proofs, then nothing else.
  -- The generation is a sub-select (run once, after the probe found a row): as a join it was
  -- planned as a hash join, a hash table built with every statement (a fifth of the backend's
  -- time at 10,000 tenants, profiled). date_part is float8; extract's numeric (since PostgreSQL
  -- 14) costs microseconds a call
  SELECT p.proven_tenant INTO passed
    FROM tenantry_private.context_proofs p
   WHERE p.value_sha256 = sha256(convert_to(current_setting('tenantry.context', true), 'UTF8'))
     AND p.expires_at >= date_part('epoch', now())
     AND p.generation = (SELECT c.proof_generation FROM tenantry_private.context_key c);
  IF passed IS NOT NULL THEN
    RETURN passed;
  END IF;
  -- the fast path: no PL/pgSQL variable in this query (one generic plan); casts only after the
  -- proof and the format matched; the setting read once (OFFSET 0 keeps the sub-select a node)
  SELECT CASE
    WHEN encode(sha256(c.opad || sha256(c.ipad || convert_to(left(s.v, -65), 'UTF8'))), 'hex') = right(s.v, 64)
     AND octet_length(s.v) BETWEEN 103 AND 134 AND substr(s.v, 37, 1) = '.'
     AND translate(left(s.v, 36), '0123456789abcdef', '0000000000000000') = '00000000-0000-0000-0000-000000000000'
     AND left(s.v, -64) ~ '^[0-9a-f-]+[.][0-9]+([.][0-9]+)?[.]$'
    THEN CASE
      WHEN split_part(s.v, '.', 2)::bigint >= date_part('epoch', now())
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
