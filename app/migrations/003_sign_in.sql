-- Sign-in: the only way the app role touches a password.
--
-- SECURITY DEFINER runs as the owner (who may read app_private and bypasses RLS to find a
-- user's memberships in any tenant). The fixed search_path and fully qualified names keep a
-- caller from substituting its own objects. Every refusal (malformed input, unknown email,
-- wrong password, not a member, tenant not active) returns the same empty result, and an
-- unknown email still costs one bcrypt computation: no answer and no timing tells which.

CREATE SCHEMA app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;
GRANT USAGE ON SCHEMA app TO :"app_role";

CREATE FUNCTION app.sign_in(email text, password text, tenant_slug text)
RETURNS TABLE (user_id uuid, tenant_id uuid)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  -- a bcrypt hash of a throw-away password: compared against when the email is unknown
  dummy_hash constant text := '$2a$08$m96P.Nsy8sZjYWsVF1q8y.nvhDzldiJHgBsrkw9NgyYGDwhRASJy2';
  v_email text;
  v_user uuid;
  v_hash text;
  v_tenant uuid;
  v_password_ok boolean;
BEGIN
  IF sign_in.email IS NULL OR sign_in.password IS NULL OR sign_in.tenant_slug IS NULL
     OR pg_catalog.length(sign_in.email) > 254
     OR pg_catalog.length(sign_in.password) NOT BETWEEN 1 AND 72
     OR sign_in.tenant_slug !~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' THEN
    RETURN;
  END IF;
  v_email := pg_catalog.lower(pg_catalog.btrim(sign_in.email));

  SELECT u.id, u.password_hash INTO v_user, v_hash
    FROM app_private.users AS u
   WHERE u.email = v_email;

  v_password_ok := public.crypt(sign_in.password, COALESCE(v_hash, dummy_hash))
                   = COALESCE(v_hash, dummy_hash)
                   AND v_hash IS NOT NULL;

  SELECT t.id INTO v_tenant
    FROM tenantry.tenants AS t
    JOIN public.members AS m ON m.tenant_id = t.id
   WHERE t.slug = sign_in.tenant_slug
     AND t.status = 'active'
     AND m.user_id = v_user;

  IF v_password_ok AND v_tenant IS NOT NULL THEN
    sign_in.user_id := v_user;
    sign_in.tenant_id := v_tenant;
    RETURN NEXT;
  END IF;
END
$fn$;

REVOKE ALL ON FUNCTION app.sign_in(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.sign_in(text, text, text) TO :"app_role";
