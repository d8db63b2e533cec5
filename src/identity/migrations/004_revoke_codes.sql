-- identity 004: revoking the current tenant's unspent one-time codes of a purpose whose payload
-- contains p_payload (src/identity/one-time-codes.ts, OneTimeCodes.revoke). Onboarding uses it to
-- replace an owner invitation nobody saw (a run killed before printing it) in the transaction that
-- issues the new one: exactly one valid invitation at any time. Expired, not deleted: list_codes
-- still shows it. Needs the tenant in context, like issue_code.
CREATE OR REPLACE FUNCTION tenantry.revoke_codes(p_purpose text, p_payload jsonb)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_count integer;
BEGIN
  UPDATE tenantry_private.one_time_codes c SET expires_at = now()
   WHERE c.tenant_id = tenantry.require_tenant() AND c.purpose = p_purpose
     AND c.payload @> COALESCE(p_payload, '{}') AND c.consumed_at IS NULL AND c.expires_at > now();
  GET DIAGNOSTICS v_count = ROW_COUNT;
  RETURN v_count;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.revoke_codes(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.revoke_codes(text, jsonb) TO :TENANTRY_APP_ROLE;
