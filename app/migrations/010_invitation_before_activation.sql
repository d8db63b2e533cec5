-- The owner's invitation of a tenant being onboarded is delivered before the tenant is activated
-- (onboarding's invite step runs while the tenant is 'provisioning', lifecycle onboard/002). The
-- earlier body found the code through tenantry.consume_code, which answers active tenants only,
-- so a sign-up's invitation was never delivered: it now reads the caller's own tenant's unspent
-- code directly (still only the current tenant's, checked against tenantry.home_tenant_id()). The
-- code itself can be spent only once the tenant is active (consume_code, on acceptance).
CREATE OR REPLACE FUNCTION app.send_invitation(p_code text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_hash bytea;
  v_invite record;
BEGIN
  IF p_code IS NULL OR p_code !~ '^[A-Za-z0-9_-]{22}$' THEN
    RETURN false;
  END IF;
  v_hash := app_private.code_hash(p_code);
  SELECT c.tenant_id, c.payload INTO v_invite FROM tenantry_private.one_time_codes c
   WHERE c.code_hash = v_hash AND c.purpose = 'invite' AND c.consumed_at IS NULL AND c.expires_at > now()
     AND c.tenant_id = tenantry.home_tenant_id();
  IF v_invite.tenant_id IS NULL
     OR EXISTS (SELECT FROM app_private.outbox o WHERE o.invitation = v_hash AND o.template = 'invitation') THEN
    RETURN false;
  END IF;
  INSERT INTO app_private.outbox (recipient, template, data, invitation)
  VALUES (v_invite.payload->>'email', 'invitation',
          pg_catalog.jsonb_build_object('code', p_code, 'role', v_invite.payload->>'role',
            'tenant', (SELECT t.slug FROM tenantry.tenants t WHERE t.id = v_invite.tenant_id)),
          v_hash);
  RETURN true;
END
$fn$;
