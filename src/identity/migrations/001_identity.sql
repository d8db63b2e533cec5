-- identity 001: sessions, one-time codes, API keys, domains, staff and the audit log
-- The layout `tenantry install` created before the library schema was versioned; idempotent over
-- it (an install of that era is brought here by running it again). Runs as the owner role.
-- identity: sessions, one-time codes, API keys, domains, staff and the audit log
CREATE TABLE IF NOT EXISTS tenantry_private.sessions (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL,
  -- NULL for staff sessions: staff belong to no tenant
  tenant_id uuid REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('user', 'staff', 'service')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CHECK ((kind = 'staff') = (tenant_id IS NULL))
);
CREATE INDEX IF NOT EXISTS sessions_user_idx ON tenantry_private.sessions (user_id, tenant_id);

CREATE TABLE IF NOT EXISTS tenantry_private.one_time_codes (
  code_hash bytea PRIMARY KEY CHECK (length(code_hash) = 32),
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  purpose text NOT NULL CHECK (purpose ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  payload jsonb NOT NULL DEFAULT '{}' CHECK (length(payload::text) <= 8192),
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz,
  consumed_by uuid
);
CREATE INDEX IF NOT EXISTS one_time_codes_tenant_idx ON tenantry_private.one_time_codes (tenant_id, purpose);

CREATE TABLE IF NOT EXISTS tenantry_private.api_keys (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  secret_hash bytea NOT NULL CHECK (length(secret_hash) = 32),
  created_by uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  last_used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS api_keys_tenant_idx ON tenantry_private.api_keys (tenant_id);

-- a domain belongs to exactly one tenant (the primary key); it resolves only once verified
CREATE TABLE IF NOT EXISTS tenantry_private.domains (
  domain text PRIMARY KEY CHECK (length(domain) <= 253 AND domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$'),
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  verification_token text NOT NULL CHECK (verification_token ~ '^[A-Za-z0-9_-]{16,64}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  verified_at timestamptz
);
CREATE INDEX IF NOT EXISTS domains_tenant_idx ON tenantry_private.domains (tenant_id);

-- staff: identities of the operator, members of no tenant (managed by the control plane)
CREATE TABLE IF NOT EXISTS tenantry_private.staff (
  user_id uuid PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  disabled_at timestamptz
);

-- a staff member's bounded, reasoned access to one tenant
CREATE TABLE IF NOT EXISTS tenantry_private.staff_grants (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  staff_id uuid NOT NULL REFERENCES tenantry_private.staff (user_id),
  session_id uuid NOT NULL REFERENCES tenantry_private.sessions (id) ON DELETE CASCADE,
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  access text NOT NULL CHECK (access IN ('act_as', 'read')),
  reason text NOT NULL CHECK (length(btrim(reason)) BETWEEN 10 AND 500),
  started_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  ended_at timestamptz,
  CHECK (expires_at > started_at AND expires_at <= started_at + interval '8 hours')
);
CREATE INDEX IF NOT EXISTS staff_grants_tenant_idx ON tenantry_private.staff_grants (tenant_id, access) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS staff_grants_session_idx ON tenantry_private.staff_grants (session_id, tenant_id) WHERE ended_at IS NULL;

-- the audit log: append-only, each row of one tenant, readable by that tenant
CREATE TABLE IF NOT EXISTS tenantry.audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  actor_kind text NOT NULL CHECK (actor_kind IN ('user', 'staff', 'service', 'system')),
  actor_id uuid,
  action text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  reason text CHECK (length(reason) <= 500),
  detail jsonb NOT NULL DEFAULT '{}' CHECK (length(detail::text) <= 8192)
);
CREATE INDEX IF NOT EXISTS audit_log_tenant_idx ON tenantry.audit_log (tenant_id, id DESC);
ALTER TABLE tenantry.audit_log ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS tenantry_own_audit ON tenantry.audit_log;
CREATE POLICY tenantry_own_audit ON tenantry.audit_log FOR SELECT USING (tenant_id = (SELECT tenantry.home_tenant_id()));
REVOKE ALL ON tenantry.audit_log FROM PUBLIC, :TENANTRY_APP_ROLE;
GRANT SELECT ON tenantry.audit_log TO :TENANTRY_APP_ROLE;

CREATE OR REPLACE FUNCTION tenantry.refuse_audit_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RAISE EXCEPTION 'tenantry: the audit log is append-only' USING ERRCODE = '42501';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.refuse_audit_change() FROM PUBLIC;
DROP TRIGGER IF EXISTS audit_log_append_only ON tenantry.audit_log;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON tenantry.audit_log
  FOR EACH ROW EXECUTE FUNCTION tenantry.refuse_audit_change();
DROP TRIGGER IF EXISTS audit_log_no_truncate ON tenantry.audit_log;
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON tenantry.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry.refuse_audit_change();

REVOKE ALL ON ALL TABLES IN SCHEMA tenantry_private FROM PUBLIC, :TENANTRY_APP_ROLE;

CREATE OR REPLACE FUNCTION tenantry.require_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t uuid := tenantry.home_tenant_id();
BEGIN
  IF t IS NULL THEN
    RAISE EXCEPTION 'tenantry: no tenant in context' USING ERRCODE = '42501';
  END IF;
  RETURN t;
END
$fn$;

-- sessions --------------------------------------------------------------------------------
-- Owner only: called by the application's own SECURITY DEFINER sign-in (after it checked the
-- password and the membership), or by the control plane.
CREATE OR REPLACE FUNCTION tenantry.start_session(p_user uuid, p_tenant uuid, p_kind text, p_ttl_seconds integer)
RETURNS TABLE (session_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_ttl_seconds IS NULL OR p_ttl_seconds NOT BETWEEN 60 AND 2592000 THEN
    RAISE EXCEPTION 'tenantry: session lifetime must be 60 s to 30 days' USING ERRCODE = '22023';
  END IF;
  IF p_kind = 'staff' AND NOT EXISTS (SELECT FROM tenantry_private.staff s WHERE s.user_id = p_user AND s.disabled_at IS NULL) THEN
    RAISE EXCEPTION 'tenantry: not an active staff member' USING ERRCODE = '42501';
  END IF;
  RETURN QUERY
    INSERT INTO tenantry_private.sessions AS s (user_id, tenant_id, kind, expires_at)
    VALUES (p_user, CASE WHEN p_kind = 'staff' THEN NULL ELSE p_tenant END, p_kind, now() + make_interval(secs => p_ttl_seconds))
    RETURNING s.id, s.expires_at;
END
$fn$;

-- One round trip per request: the tenant's status (NULL when unknown), the session's facts
-- when it is active, and for a staff session its open grant on this tenant.
CREATE OR REPLACE FUNCTION tenantry.authorize_request(p_tenant uuid, p_session uuid)
RETURNS TABLE (tenant_status text, session_user_id uuid, session_tenant_id uuid, session_kind text,
               grant_id uuid, grant_access text, grant_expires_at timestamptz, grant_reason text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  s tenantry_private.sessions;
BEGIN
  tenant_status := (SELECT t.status FROM tenantry.tenants t WHERE t.id = p_tenant);
  IF p_session IS NOT NULL THEN
    SELECT * INTO s FROM tenantry_private.sessions x
     WHERE x.id = p_session AND x.revoked_at IS NULL AND x.expires_at > now();
    IF FOUND AND s.kind = 'staff' AND NOT EXISTS (
      SELECT FROM tenantry_private.staff st WHERE st.user_id = s.user_id AND st.disabled_at IS NULL) THEN
      s := NULL;
    END IF;
    IF s.id IS NOT NULL THEN
      session_user_id := s.user_id;
      session_tenant_id := s.tenant_id;
      session_kind := s.kind;
      -- touched at most once a minute: the read path stays (nearly) write-free
      IF s.last_seen_at < now() - interval '1 minute' THEN
        UPDATE tenantry_private.sessions x SET last_seen_at = now() WHERE x.id = s.id;
      END IF;
      IF s.kind = 'staff' AND p_tenant IS NOT NULL THEN
        SELECT g.id, g.access, g.expires_at, g.reason INTO grant_id, grant_access, grant_expires_at, grant_reason
          FROM tenantry_private.staff_grants g
         WHERE g.session_id = s.id AND g.tenant_id = p_tenant AND g.ended_at IS NULL AND g.expires_at > now()
         ORDER BY (g.access = 'act_as') DESC, g.expires_at DESC
         LIMIT 1;
      END IF;
    END IF;
  END IF;
  RETURN NEXT;
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.end_session(p_session uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH ended AS (
    UPDATE tenantry_private.sessions s SET revoked_at = now()
     WHERE s.id = p_session AND s.revoked_at IS NULL RETURNING 1)
  SELECT EXISTS (SELECT FROM ended);
$fn$;

-- a member removed from the current tenant: every session of theirs in it ends now
CREATE OR REPLACE FUNCTION tenantry.end_member_sessions(p_user uuid) RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH ended AS (
    UPDATE tenantry_private.sessions s SET revoked_at = now()
     WHERE s.user_id = p_user AND s.tenant_id = tenantry.require_tenant() AND s.revoked_at IS NULL RETURNING 1)
  SELECT count(*)::integer FROM ended;
$fn$;

-- one-time codes --------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tenantry.issue_code(p_purpose text, p_code_hash bytea, p_payload jsonb, p_ttl_seconds integer, p_created_by uuid)
RETURNS timestamptz
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_expires timestamptz;
BEGIN
  IF p_ttl_seconds IS NULL OR p_ttl_seconds NOT BETWEEN 60 AND 1209600 THEN
    RAISE EXCEPTION 'tenantry: a code lives 60 s to 14 days' USING ERRCODE = '22023';
  END IF;
  INSERT INTO tenantry_private.one_time_codes (code_hash, tenant_id, purpose, payload, created_by, expires_at)
  VALUES (p_code_hash, tenantry.require_tenant(), p_purpose, COALESCE(p_payload, '{}'), p_created_by, now() + make_interval(secs => p_ttl_seconds))
  RETURNING expires_at INTO v_expires;
  RETURN v_expires;
END
$fn$;

-- Spends a code once: a second call (a replay), an expired or unknown code returns no row.
-- Needs no tenant in context: the code names its tenant.
CREATE OR REPLACE FUNCTION tenantry.consume_code(p_purpose text, p_code_hash bytea, p_consumer uuid)
RETURNS TABLE (tenant_id uuid, payload jsonb, created_by uuid)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  UPDATE tenantry_private.one_time_codes c SET consumed_at = now(), consumed_by = p_consumer
   WHERE c.code_hash = p_code_hash AND c.purpose = p_purpose AND c.consumed_at IS NULL AND c.expires_at > now()
     AND EXISTS (SELECT FROM tenantry.tenants t WHERE t.id = c.tenant_id AND t.status = 'active')
  RETURNING c.tenant_id, c.payload, c.created_by;
$fn$;

CREATE OR REPLACE FUNCTION tenantry.list_codes(p_purpose text)
RETURNS TABLE (purpose text, payload jsonb, created_by uuid, created_at timestamptz, expires_at timestamptz, consumed_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT c.purpose, c.payload, c.created_by, c.created_at, c.expires_at, c.consumed_at
    FROM tenantry_private.one_time_codes c
   WHERE c.tenant_id = tenantry.require_tenant() AND (p_purpose IS NULL OR c.purpose = p_purpose)
   ORDER BY c.created_at DESC LIMIT 500;
$fn$;

-- API keys ----------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tenantry.create_api_key(p_name text, p_secret_hash bytea, p_created_by uuid, p_expires_at timestamptz)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  INSERT INTO tenantry_private.api_keys (tenant_id, name, secret_hash, created_by, expires_at)
  VALUES (tenantry.require_tenant(), p_name, p_secret_hash, p_created_by, p_expires_at)
  RETURNING id;
$fn$;

CREATE OR REPLACE FUNCTION tenantry.list_api_keys()
RETURNS TABLE (id uuid, name text, created_by uuid, created_at timestamptz, expires_at timestamptz, last_used_at timestamptz, revoked_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT k.id, k.name, k.created_by, k.created_at, k.expires_at, k.last_used_at, k.revoked_at
    FROM tenantry_private.api_keys k WHERE k.tenant_id = tenantry.require_tenant()
   ORDER BY k.created_at DESC, k.id;
$fn$;

CREATE OR REPLACE FUNCTION tenantry.revoke_api_key(p_id uuid) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH revoked AS (
    UPDATE tenantry_private.api_keys k SET revoked_at = now()
     WHERE k.id = p_id AND k.tenant_id = tenantry.require_tenant() AND k.revoked_at IS NULL RETURNING 1)
  SELECT EXISTS (SELECT FROM revoked);
$fn$;

-- Needs no tenant in context: the key names its tenant. Unknown, revoked, expired or a wrong
-- secret all return no row.
CREATE OR REPLACE FUNCTION tenantry.verify_api_key(p_id uuid, p_secret_hash bytea)
RETURNS TABLE (tenant_id uuid, tenant_status text, key_name text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  k tenantry_private.api_keys;
BEGIN
  SELECT * INTO k FROM tenantry_private.api_keys x
   WHERE x.id = p_id AND x.revoked_at IS NULL AND (x.expires_at IS NULL OR x.expires_at > now());
  IF NOT FOUND OR k.secret_hash <> p_secret_hash THEN
    RETURN;
  END IF;
  IF k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute' THEN
    UPDATE tenantry_private.api_keys x SET last_used_at = now() WHERE x.id = k.id;
  END IF;
  tenant_id := k.tenant_id;
  tenant_status := (SELECT t.status FROM tenantry.tenants t WHERE t.id = k.tenant_id);
  key_name := k.name;
  RETURN NEXT;
END
$fn$;

-- domains -----------------------------------------------------------------------------------
-- A domain another tenant verified is never taken; one it claimed but did not verify within
-- three days is free again.
CREATE OR REPLACE FUNCTION tenantry.add_domain(p_domain text, p_token text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  t uuid := tenantry.require_tenant();
BEGIN
  DELETE FROM tenantry_private.domains d
   WHERE d.domain = p_domain AND d.tenant_id <> t AND d.verified_at IS NULL AND d.created_at < now() - interval '3 days';
  INSERT INTO tenantry_private.domains (domain, tenant_id, verification_token) VALUES (p_domain, t, p_token)
  ON CONFLICT (domain) DO NOTHING;
  RETURN EXISTS (SELECT FROM tenantry_private.domains d WHERE d.domain = p_domain AND d.tenant_id = t);
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.confirm_domain(p_domain text) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH confirmed AS (
    UPDATE tenantry_private.domains d SET verified_at = COALESCE(d.verified_at, now())
     WHERE d.domain = p_domain AND d.tenant_id = tenantry.require_tenant() RETURNING 1)
  SELECT EXISTS (SELECT FROM confirmed);
$fn$;

CREATE OR REPLACE FUNCTION tenantry.remove_domain(p_domain text) RETURNS boolean
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH removed AS (
    DELETE FROM tenantry_private.domains d WHERE d.domain = p_domain AND d.tenant_id = tenantry.require_tenant() RETURNING 1)
  SELECT EXISTS (SELECT FROM removed);
$fn$;

CREATE OR REPLACE FUNCTION tenantry.list_domains()
RETURNS TABLE (domain text, verification_token text, created_at timestamptz, verified_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT d.domain, d.verification_token, d.created_at, d.verified_at
    FROM tenantry_private.domains d WHERE d.tenant_id = tenantry.require_tenant() ORDER BY d.domain;
$fn$;

-- Host → tenant, for verified domains only; slug → tenant for subdomains. Both public facts.
CREATE OR REPLACE FUNCTION tenantry.resolve_domain(p_domain text)
RETURNS TABLE (tenant_id uuid, tenant_status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT t.id, t.status FROM tenantry_private.domains d JOIN tenantry.tenants t ON t.id = d.tenant_id
   WHERE d.domain = p_domain AND d.verified_at IS NOT NULL;
$fn$;

CREATE OR REPLACE FUNCTION tenantry.resolve_slug(p_slug text)
RETURNS TABLE (tenant_id uuid, tenant_status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT t.id, t.status FROM tenantry.tenants t WHERE t.slug = p_slug;
$fn$;

-- staff -------------------------------------------------------------------------------------
-- Opens a staff member's bounded access to a tenant, with a reason, and records it in that
-- tenant's audit log. Needs an active staff session: injected SQL without one gains nothing.
CREATE OR REPLACE FUNCTION tenantry.begin_staff_access(p_session uuid, p_tenant uuid, p_access text, p_reason text, p_minutes integer)
RETURNS TABLE (grant_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_staff uuid;
  g tenantry_private.staff_grants;
BEGIN
  SELECT s.user_id INTO v_staff FROM tenantry_private.sessions s
    JOIN tenantry_private.staff st ON st.user_id = s.user_id AND st.disabled_at IS NULL
   WHERE s.id = p_session AND s.kind = 'staff' AND s.revoked_at IS NULL AND s.expires_at > now();
  IF v_staff IS NULL THEN
    RAISE EXCEPTION 'tenantry: no active staff session' USING ERRCODE = '42501';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 10 AND 500 THEN
    RAISE EXCEPTION 'tenantry: staff access needs a reason of 10 to 500 characters' USING ERRCODE = '22023';
  END IF;
  IF p_minutes IS NULL OR p_minutes NOT BETWEEN 1 AND 480 THEN
    RAISE EXCEPTION 'tenantry: staff access lasts 1 to 480 minutes' USING ERRCODE = '22023';
  END IF;
  IF NOT EXISTS (SELECT FROM tenantry.tenants t WHERE t.id = p_tenant AND t.status <> 'deleted') THEN
    RAISE EXCEPTION 'tenantry: no such tenant' USING ERRCODE = 'P0002';
  END IF;
  INSERT INTO tenantry_private.staff_grants (staff_id, session_id, tenant_id, access, reason, expires_at)
  VALUES (v_staff, p_session, p_tenant, p_access, btrim(p_reason), now() + make_interval(mins => p_minutes))
  RETURNING * INTO g;
  INSERT INTO tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail)
  VALUES (p_tenant, 'staff', v_staff, 'staff.access.begin', g.reason,
          jsonb_build_object('grant_id', g.id, 'access', g.access, 'expires_at', g.expires_at));
  grant_id := g.id;
  expires_at := g.expires_at;
  RETURN NEXT;
END
$fn$;

CREATE OR REPLACE FUNCTION tenantry.end_staff_access(p_session uuid, p_grant uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  g tenantry_private.staff_grants;
BEGIN
  UPDATE tenantry_private.staff_grants x SET ended_at = now()
   WHERE x.id = p_grant AND x.session_id = p_session AND x.ended_at IS NULL
  RETURNING * INTO g;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO tenantry.audit_log (tenant_id, actor_kind, actor_id, action, detail)
  VALUES (g.tenant_id, 'staff', g.staff_id, 'staff.access.end', jsonb_build_object('grant_id', g.id));
  RETURN true;
END
$fn$;

-- The support role reads a tenant only while some staff member holds an open 'read' grant on it
-- (a restrictive policy on every tenant table calls this once per statement).
CREATE OR REPLACE FUNCTION tenantry.support_read_allowed() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT EXISTS (
    SELECT FROM tenantry_private.staff_grants g
      JOIN tenantry_private.sessions s ON s.id = g.session_id AND s.revoked_at IS NULL AND s.expires_at > now()
      JOIN tenantry_private.staff st ON st.user_id = g.staff_id AND st.disabled_at IS NULL
     WHERE g.tenant_id = tenantry.home_tenant_id() AND g.access = 'read'
       AND g.ended_at IS NULL AND g.expires_at > now());
$fn$;

-- audit -------------------------------------------------------------------------------------
-- An entry in the current tenant's log. Staff entries must name the staff session (p_session,
-- a random id only the staff member's token carries) holding an open grant on this tenant, so
-- injected SQL cannot fill a tenant's log with invented staff actions.
DROP FUNCTION IF EXISTS tenantry.record_audit(text, uuid, text, text, jsonb);
CREATE OR REPLACE FUNCTION tenantry.record_audit(p_actor_kind text, p_actor uuid, p_action text, p_reason text, p_detail jsonb, p_session uuid DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_id bigint;
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
  RETURNING id INTO v_id;
  RETURN v_id;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.require_tenant(), tenantry.authorize_request(uuid, uuid), tenantry.end_session(uuid), tenantry.end_member_sessions(uuid), tenantry.issue_code(text, bytea, jsonb, integer, uuid), tenantry.consume_code(text, bytea, uuid), tenantry.list_codes(text), tenantry.create_api_key(text, bytea, uuid, timestamptz), tenantry.list_api_keys(), tenantry.revoke_api_key(uuid), tenantry.verify_api_key(uuid, bytea), tenantry.add_domain(text, text), tenantry.confirm_domain(text), tenantry.remove_domain(text), tenantry.list_domains(), tenantry.resolve_domain(text), tenantry.resolve_slug(text), tenantry.begin_staff_access(uuid, uuid, text, text, integer), tenantry.end_staff_access(uuid, uuid), tenantry.record_audit(text, uuid, text, text, jsonb, uuid), tenantry.start_session(uuid, uuid, text, integer), tenantry.support_read_allowed(), tenantry.refuse_audit_change() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry.require_tenant(), tenantry.authorize_request(uuid, uuid), tenantry.end_session(uuid), tenantry.end_member_sessions(uuid), tenantry.issue_code(text, bytea, jsonb, integer, uuid), tenantry.consume_code(text, bytea, uuid), tenantry.list_codes(text), tenantry.create_api_key(text, bytea, uuid, timestamptz), tenantry.list_api_keys(), tenantry.revoke_api_key(uuid), tenantry.verify_api_key(uuid, bytea), tenantry.add_domain(text, text), tenantry.confirm_domain(text), tenantry.remove_domain(text), tenantry.list_domains(), tenantry.resolve_domain(text), tenantry.resolve_slug(text), tenantry.begin_staff_access(uuid, uuid, text, text, integer), tenantry.end_staff_access(uuid, uuid), tenantry.record_audit(text, uuid, text, text, jsonb, uuid) TO :TENANTRY_APP_ROLE;
