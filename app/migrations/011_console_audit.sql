-- The operator console's own record of what staff did from it (docs/console.md): one row per
-- action, whatever its outcome, written by the console as the owner role. It is the control
-- plane's, not a tenant's: it outlives a purged tenant (the tenant's own audit log goes with it)
-- and records refusals and failures, which never reach a tenant's log. Append-only, like the
-- tenants' audit log; the app role has no access. The tenant's column is `target_tenant_id`, not
-- `tenant_id`: this is the operator's record about a tenant, kept after its purge like the purge
-- report (which names the tenant too), so the purge's scan for tenant data rightly passes it by.
CREATE TABLE app_private.console_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  staff_id uuid NOT NULL,
  action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{0,63}$'),
  target_tenant_id uuid,
  tenant_slug text,
  reason text CHECK (reason IS NULL OR length(reason) <= 500),
  outcome text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed', 'started')),
  code text CHECK (code IS NULL OR length(code) <= 64),
  detail jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (octet_length(detail::text) <= 8192)
);
CREATE INDEX console_audit_tenant ON app_private.console_audit (target_tenant_id, id DESC);
CREATE INDEX console_audit_staff ON app_private.console_audit (staff_id, id DESC);
REVOKE ALL ON app_private.console_audit FROM PUBLIC;

CREATE FUNCTION app_private.console_audit_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RAISE EXCEPTION 'the console audit is append-only' USING ERRCODE = '42501';
END
$fn$;
CREATE TRIGGER console_audit_append_only BEFORE UPDATE OR DELETE ON app_private.console_audit
  FOR EACH ROW EXECUTE FUNCTION app_private.console_audit_append_only();
CREATE TRIGGER console_audit_no_truncate BEFORE TRUNCATE ON app_private.console_audit
  FOR EACH STATEMENT EXECUTE FUNCTION app_private.console_audit_append_only();
