-- GET /me for staff acting as a tenant: their own email and name (the app role cannot read
-- app_private.users). Only active staff are answered, and only their own profile facts: no
-- tenant table, nothing of any tenant.
CREATE FUNCTION app.staff_profile(p_user uuid) RETURNS TABLE (email text, display_name text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT u.email, u.display_name FROM app_private.users u
    JOIN tenantry_private.staff s ON s.user_id = u.id AND s.disabled_at IS NULL
   WHERE u.id = p_user
$fn$;
REVOKE ALL ON FUNCTION app.staff_profile(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.staff_profile(uuid) TO :"app_role";
