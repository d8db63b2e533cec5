-- identity 002: audit entry numbers per tenant. Runs as the owner role.
--
-- tenantry.audit_log.id comes from one identity sequence shared by every tenant: the ids a tenant
-- saw had gaps made by the other tenants' entries, and the gap between two of its own entries
-- told it how much all the others wrote in between. Each entry now also gets `seq`, its number
-- in its own tenant's log (1, 2, 3, …), assigned in the insert under a lock on that tenant's
-- counter row. `seq` is what a tenant sees (AuditLog's `id`, the `before` cursor); `id` stays the
-- table's key, and the app role can no longer select it.
--
-- Gapless: the counter row is updated in the inserting transaction, so a rollback takes its
-- number back. Ordered by commit: the next insert of the same tenant waits on the row lock until
-- the previous one committed, so a page read with `before` never misses an entry that commits
-- later with a smaller number. The price: one tenant's audit writes are serialized (different
-- tenants' are not). Idempotent: safe to run again on every install.

CREATE TABLE IF NOT EXISTS tenantry_private.audit_counters (
  tenant_id uuid PRIMARY KEY,
  last_seq bigint NOT NULL CHECK (last_seq >= 0)
);
REVOKE ALL ON tenantry_private.audit_counters FROM PUBLIC, :TENANTRY_APP_ROLE;
-- RLS stated here (deny by default, as the event trigger would have it on an upgraded database,
-- where it exists before this runs): only the owner's SECURITY DEFINER numbering touches it
ALTER TABLE tenantry_private.audit_counters ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

ALTER TABLE tenantry.audit_log ADD COLUMN IF NOT EXISTS seq bigint;

-- number the entries written before this change, in id order per tenant. The append-only
-- trigger refuses every UPDATE, so it is off for this one statement, inside the same
-- transaction (which holds the table's ACCESS EXCLUSIVE lock from the ALTER above: no insert
-- can slip in unnumbered)
DO $do$
BEGIN
  IF EXISTS (SELECT FROM tenantry.audit_log a WHERE a.seq IS NULL) THEN
    ALTER TABLE tenantry.audit_log DISABLE TRIGGER audit_log_append_only;
    UPDATE tenantry.audit_log a SET seq = n.seq
      FROM (SELECT x.id, row_number() OVER (PARTITION BY x.tenant_id ORDER BY x.id) AS seq
              FROM tenantry.audit_log x) AS n
     WHERE a.id = n.id;
    ALTER TABLE tenantry.audit_log ENABLE TRIGGER audit_log_append_only;
    INSERT INTO tenantry_private.audit_counters AS c (tenant_id, last_seq)
    SELECT a.tenant_id, max(a.seq) FROM tenantry.audit_log a GROUP BY a.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET last_seq = GREATEST(c.last_seq, excluded.last_seq);
  END IF;
END
$do$;
ALTER TABLE tenantry.audit_log ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS audit_log_tenant_seq_idx ON tenantry.audit_log (tenant_id, seq);

-- Every insert is numbered here, whoever writes it (record_audit, begin/end_staff_access, an
-- application's own SECURITY DEFINER function, the control plane): a number given by the writer
-- is overwritten.
CREATE OR REPLACE FUNCTION tenantry.number_audit_entry() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  INSERT INTO tenantry_private.audit_counters AS c (tenant_id, last_seq) VALUES (NEW.tenant_id, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = c.last_seq + 1
  RETURNING c.last_seq INTO NEW.seq;
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.number_audit_entry() FROM PUBLIC;
DROP TRIGGER IF EXISTS audit_log_number ON tenantry.audit_log;
CREATE TRIGGER audit_log_number BEFORE INSERT ON tenantry.audit_log
  FOR EACH ROW EXECUTE FUNCTION tenantry.number_audit_entry();

-- The app role reads every column but the global id.
REVOKE SELECT ON tenantry.audit_log FROM :TENANTRY_APP_ROLE;
GRANT SELECT (tenant_id, seq, occurred_at, actor_kind, actor_id, action, reason, detail) ON tenantry.audit_log TO :TENANTRY_APP_ROLE;

-- record_audit answers the entry's number in the tenant's log (was: the global id). The rest is
-- the function of identity-sql.ts unchanged.
CREATE OR REPLACE FUNCTION tenantry.record_audit(p_actor_kind text, p_actor uuid, p_action text, p_reason text, p_detail jsonb, p_session uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_seq bigint;
BEGIN
  IF p_actor_kind = 'system' THEN
    RAISE EXCEPTION 'tenantry: system entries are written by the control plane' USING ERRCODE = '42501';
  END IF;
  IF p_actor_kind = 'staff' AND NOT EXISTS (
    SELECT FROM tenantry_private.staff_grants g
      JOIN tenantry_private.sessions s ON s.id = g.session_id AND s.revoked_at IS NULL AND s.expires_at > now()
     WHERE g.staff_id = p_actor AND g.session_id = p_session AND g.tenant_id = tenantry.require_tenant()
       AND g.ended_at IS NULL AND g.expires_at > now()) THEN
    RAISE EXCEPTION 'tenantry: no open staff grant on this tenant' USING ERRCODE = '42501';
  END IF;
  INSERT INTO tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail)
  VALUES (tenantry.require_tenant(), p_actor_kind, p_actor, p_action, p_reason, COALESCE(p_detail, '{}'))
  RETURNING seq INTO v_seq;
  RETURN v_seq;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.record_audit(text, uuid, text, text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.record_audit(text, uuid, text, text, jsonb, uuid) TO :TENANTRY_APP_ROLE;
