-- Sessions, invitations, membership management and staff sign-in.
--
-- Sign-in now starts a server-side session (tenantry.start_session, in tenantry_private): the
-- token carries its id (`sid`), every request checks it, and sign-out ends it at once.
-- Passwords are still checked only here, inside SECURITY DEFINER functions (run as the owner);
-- the app role reaches none of app_private or tenantry_private directly.

-- A removed member keeps the row (recordings still point to it) but loses access at once.
ALTER TABLE public.members ADD COLUMN removed_at timestamptz;

-- One bcrypt comparison, whether or not the email exists: no answer and no timing tells which.
CREATE FUNCTION app_private.check_password(p_email text, p_password text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  dummy_hash constant text := '$2a$08$m96P.Nsy8sZjYWsVF1q8y.nvhDzldiJHgBsrkw9NgyYGDwhRASJy2';
  v_user uuid;
  v_hash text;
BEGIN
  IF p_email IS NULL OR p_password IS NULL OR pg_catalog.length(p_email) > 254
     OR pg_catalog.length(p_password) NOT BETWEEN 1 AND 72 THEN
    RETURN NULL;
  END IF;
  SELECT u.id, u.password_hash INTO v_user, v_hash
    FROM app_private.users AS u WHERE u.email = pg_catalog.lower(pg_catalog.btrim(p_email));
  IF public.crypt(p_password, COALESCE(v_hash, dummy_hash)) = COALESCE(v_hash, dummy_hash) AND v_hash IS NOT NULL THEN
    RETURN v_user;
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION app_private.check_password(text, text) FROM PUBLIC;

DROP FUNCTION app.sign_in(text, text, text);
CREATE FUNCTION app.sign_in(email text, password text, tenant_slug text, ttl_seconds integer)
RETURNS TABLE (user_id uuid, tenant_id uuid, session_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_user uuid;
  v_tenant uuid;
BEGIN
  IF sign_in.tenant_slug IS NULL OR sign_in.tenant_slug !~ '^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$' THEN
    RETURN;
  END IF;
  v_user := app_private.check_password(sign_in.email, sign_in.password);
  SELECT t.id INTO v_tenant
    FROM tenantry.tenants AS t
    JOIN public.members AS m ON m.tenant_id = t.id AND m.removed_at IS NULL
   WHERE t.slug = sign_in.tenant_slug AND t.status = 'active' AND m.user_id = v_user;
  IF v_user IS NULL OR v_tenant IS NULL THEN
    RETURN;
  END IF;
  SELECT s.session_id, s.expires_at INTO sign_in.session_id, sign_in.expires_at
    FROM tenantry.start_session(v_user, v_tenant, 'user', sign_in.ttl_seconds) AS s;
  sign_in.user_id := v_user;
  sign_in.tenant_id := v_tenant;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION app.sign_in(text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.sign_in(text, text, text, integer) TO :"app_role";

-- Staff sign in to no tenant; a password alone is not enough: the user must be active staff.
CREATE FUNCTION app.staff_sign_in(email text, password text, ttl_seconds integer)
RETURNS TABLE (user_id uuid, session_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_user uuid := app_private.check_password(staff_sign_in.email, staff_sign_in.password);
BEGIN
  IF v_user IS NULL THEN
    RETURN;
  END IF;
  BEGIN
    SELECT s.session_id, s.expires_at INTO staff_sign_in.session_id, staff_sign_in.expires_at
      FROM tenantry.start_session(v_user, NULL, 'staff', staff_sign_in.ttl_seconds) AS s;
  EXCEPTION WHEN insufficient_privilege THEN
    RETURN; -- not staff: the same empty answer as a wrong password
  END;
  staff_sign_in.user_id := v_user;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION app.staff_sign_in(text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.staff_sign_in(text, text, integer) TO :"app_role";

-- Accepting an invitation: spends the one-time code, creates the identity when the email is new
-- (or checks the password when it is not), makes the membership and starts a session, all in
-- one statement. The code is bound to the invited email. Any refusal raises AP001 (one code for
-- every reason), and the code stays unspent: the whole statement rolls back.
CREATE FUNCTION app.accept_invitation(code_hash bytea, email text, password text, display_name text, ttl_seconds integer)
RETURNS TABLE (user_id uuid, tenant_id uuid, session_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_email text := pg_catalog.lower(pg_catalog.btrim(accept_invitation.email));
  v_code record;
  v_user uuid;
  v_name text;
BEGIN
  SELECT c.tenant_id, c.payload, c.created_by INTO v_code
    FROM tenantry.consume_code('invite', accept_invitation.code_hash, NULL) AS c;
  IF v_code.tenant_id IS NULL OR v_code.payload->>'email' IS DISTINCT FROM v_email THEN
    RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
  END IF;
  SELECT u.id INTO v_user FROM app_private.users u WHERE u.email = v_email;
  IF v_user IS NULL THEN
    IF accept_invitation.password IS NULL OR pg_catalog.length(accept_invitation.password) NOT BETWEEN 8 AND 72
       OR accept_invitation.display_name IS NULL OR pg_catalog.length(pg_catalog.btrim(accept_invitation.display_name)) NOT BETWEEN 1 AND 200 THEN
      RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
    END IF;
    INSERT INTO app_private.users (email, password_hash, display_name)
    VALUES (v_email, public.crypt(accept_invitation.password, public.gen_salt('bf', 8)), pg_catalog.btrim(accept_invitation.display_name))
    RETURNING id INTO v_user;
  ELSIF app_private.check_password(v_email, accept_invitation.password) IS DISTINCT FROM v_user THEN
    RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
  END IF;
  SELECT u.display_name INTO v_name FROM app_private.users u WHERE u.id = v_user;
  INSERT INTO public.members (tenant_id, user_id, role, display_name, email)
  VALUES (v_code.tenant_id, v_user, COALESCE(v_code.payload->>'role', 'member'), v_name, v_email)
  ON CONFLICT ON CONSTRAINT members_pkey DO UPDATE
    SET removed_at = NULL, role = CASE WHEN members.removed_at IS NULL THEN members.role ELSE excluded.role END;
  INSERT INTO tenantry.audit_log (tenant_id, actor_kind, actor_id, action, detail)
  VALUES (v_code.tenant_id, 'user', v_user, 'member.joined',
          pg_catalog.jsonb_build_object('role', COALESCE(v_code.payload->>'role', 'member'), 'invited_by', v_code.created_by));
  SELECT s.session_id, s.expires_at INTO accept_invitation.session_id, accept_invitation.expires_at
    FROM tenantry.start_session(v_user, v_code.tenant_id, 'user', accept_invitation.ttl_seconds) AS s;
  accept_invitation.user_id := v_user;
  accept_invitation.tenant_id := v_code.tenant_id;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION app.accept_invitation(bytea, text, text, text, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.accept_invitation(bytea, text, text, text, integer) TO :"app_role";
