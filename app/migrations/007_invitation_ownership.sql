-- Accepting an invitation: no account oracle, and credentials set only by their owner.
--
-- Before: app.accept_invitation (005) created the identity when the invited e-mail was new, with
-- whatever password the caller sent. The admin who invited an address also holds its code, so he
-- could create the identity of an address he does not control (squatting it for invitations of
-- other tenants), and the answer told him whether the address had an account anywhere.
--
-- Now the caller must prove that the identity is theirs before anything is created or joined:
-- - an existing identity proves it with its password (checked, never set: no password is written
--   for an identity that exists);
-- - a new identity proves it reads the invited address: a confirmation code is sent to the address
--   (app_private.outbox) and the accept that creates the identity must carry it.
-- Until one of the two holds, every call with a valid invitation gets the same answer
-- ('confirmation_sent'), does one bcrypt comparison and writes one message to the address,
-- whether or not the address has an account: only the address's owner learns which (the message
-- says so). A wrong confirmation gets one refusal (AP002) in both cases too.

-- Mail the server would send, written in the same transaction as what it announces. A mailer
-- (a process on the owner role, or a role of its own) sends each one and sets sent_at; the
-- reference server has none: read the table as the owner. The app role has no USAGE on
-- app_private, so it cannot read the codes in flight.
CREATE TABLE app_private.outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  recipient text NOT NULL CHECK (length(recipient) BETWEEN 3 AND 254),
  template text NOT NULL CHECK (template IN ('invitation', 'address_confirmation', 'invitation_existing_account')),
  data jsonb NOT NULL DEFAULT '{}',
  -- the invitation's code hash: bounds how often one invitation writes to its address
  invitation bytea CHECK (length(invitation) = 32),
  created_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz
);
CREATE INDEX outbox_invitation_idx ON app_private.outbox (invitation, created_at);
CREATE INDEX outbox_unsent_idx ON app_private.outbox (id) WHERE sent_at IS NULL;
REVOKE ALL ON app_private.outbox FROM PUBLIC;
REVOKE ALL ON app_private.outbox FROM :"app_role";

-- A code sent to an invited address that has no identity: whoever accepts the invitation as a
-- NEW identity must bring it. Stored as SHA-256 only; bound to the invitation and the address.
CREATE TABLE app_private.address_confirmations (
  code_hash bytea PRIMARY KEY CHECK (length(code_hash) = 32),
  invitation bytea NOT NULL CHECK (length(invitation) = 32),
  email text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz
);
CREATE INDEX address_confirmations_invitation_idx ON app_private.address_confirmations (invitation);
REVOKE ALL ON app_private.address_confirmations FROM PUBLIC;
REVOKE ALL ON app_private.address_confirmations FROM :"app_role";

-- A one-time code in the library's format (OneTimeCodes: 128 random bits, 22 base64url
-- characters) and its stored form (SHA-256 of the text, as OneTimeCodes.hash computes it).
CREATE FUNCTION app_private.new_code() RETURNS text
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(public.gen_random_bytes(16), 'base64'), '+/', '-_'), '=');
$fn$;
REVOKE ALL ON FUNCTION app_private.new_code() FROM PUBLIC;

CREATE FUNCTION app_private.code_hash(p_code text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT pg_catalog.sha256(pg_catalog.convert_to(p_code, 'UTF8'));
$fn$;
REVOKE ALL ON FUNCTION app_private.code_hash(text) FROM PUBLIC;

-- The invitation a code names, WITHOUT spending it: tenantry.consume_code runs inside a block
-- that is then undone (a PL/pgSQL exception block is a subtransaction), so the code stays exactly
-- as it was, row lock included. The library's only door to a code is consume_code; this keeps to it.
CREATE FUNCTION app_private.peek_invitation(p_code_hash bytea)
RETURNS TABLE (tenant_id uuid, payload jsonb, created_by uuid)
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v record;
BEGIN
  BEGIN
    SELECT c.tenant_id, c.payload, c.created_by INTO v FROM tenantry.consume_code('invite', p_code_hash, NULL) AS c;
    RAISE EXCEPTION 'undo the spend' USING ERRCODE = 'AP900';
  EXCEPTION WHEN SQLSTATE 'AP900' THEN
    NULL;
  END;
  IF v.tenant_id IS NOT NULL THEN
    tenant_id := v.tenant_id;
    payload := v.payload;
    created_by := v.created_by;
    RETURN NEXT;
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION app_private.peek_invitation(bytea) FROM PUBLIC;

-- Delivers an invitation the current tenant issued (OneTimeCodes.issue, purpose 'invite') to the
-- address it names, once: the app role passes the code it just issued. A code of another tenant,
-- a spent or unknown one, or a second call for the same code writes nothing (false).
CREATE FUNCTION app.send_invitation(p_code text) RETURNS boolean
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
  SELECT p.tenant_id, p.payload INTO v_invite FROM app_private.peek_invitation(v_hash) AS p;
  IF v_invite.tenant_id IS NULL OR v_invite.tenant_id IS DISTINCT FROM tenantry.home_tenant_id()
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
REVOKE ALL ON FUNCTION app.send_invitation(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.send_invitation(text) TO :"app_role";

DROP FUNCTION app.accept_invitation(bytea, text, text, text, integer);

-- Accepting an invitation. Outcomes:
-- - 'joined' (with the session): the invitation was spent, the membership made, the session
--   started, in this one statement; the identity is the existing one whose password matched, or
--   a new one created with this password because the confirmation sent to the address matched;
-- - 'confirmation_sent': a valid invitation, but nothing proved the identity yet (no account and
--   no confirmation, or an account and a wrong password). A message went to the address: a
--   confirmation code when it has no account, a notice to accept with its password when it has
--   one; at most one a minute and ten in all per invitation. Same answer, same work, for both;
-- - AP001 (raised): the invitation is invalid, expired, spent, or for another address;
-- - AP002 (raised): a confirmation was sent and nothing proved the identity (a wrong or expired
--   confirmation, or an account and a wrong password): again the same for both.
-- A raise rolls everything back: the invitation and the confirmation stay unspent.
CREATE FUNCTION app.accept_invitation(code_hash bytea, email text, password text, display_name text,
                                      confirmation_hash bytea, ttl_seconds integer)
RETURNS TABLE (outcome text, user_id uuid, tenant_id uuid, session_id uuid, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_email text := pg_catalog.lower(pg_catalog.btrim(accept_invitation.email));
  v_invite record;
  v_existing uuid;
  v_proven uuid;
  v_confirmed boolean := false;
  v_name text;
  v_code text;
  v_slug text;
BEGIN
  SELECT p.tenant_id, p.payload, p.created_by INTO v_invite FROM app_private.peek_invitation(accept_invitation.code_hash) AS p;
  IF v_invite.tenant_id IS NULL OR v_invite.payload->>'email' IS DISTINCT FROM v_email THEN
    RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
  END IF;

  -- one bcrypt comparison whether or not the address has an account (a dummy hash when not)
  v_proven := app_private.check_password(v_email, accept_invitation.password);
  SELECT u.id INTO v_existing FROM app_private.users AS u WHERE u.email = v_email;
  IF v_existing IS NULL AND accept_invitation.confirmation_hash IS NOT NULL THEN
    UPDATE app_private.address_confirmations AS c SET consumed_at = pg_catalog.now()
     WHERE c.code_hash = accept_invitation.confirmation_hash AND c.invitation = accept_invitation.code_hash
       AND c.email = v_email AND c.consumed_at IS NULL AND c.expires_at > pg_catalog.now();
    v_confirmed := FOUND;
  END IF;

  IF v_proven IS NULL AND NOT v_confirmed THEN
    IF accept_invitation.confirmation_hash IS NOT NULL THEN
      RAISE EXCEPTION 'confirmation refused' USING ERRCODE = 'AP002';
    END IF;
    -- at most one message a minute, and ten in all, per invitation: its holder cannot flood the address
    IF NOT EXISTS (SELECT FROM app_private.outbox AS o
                    WHERE o.invitation = accept_invitation.code_hash AND o.template <> 'invitation'
                      AND o.created_at > pg_catalog.now() - interval '1 minute')
       AND (SELECT pg_catalog.count(*) FROM app_private.outbox AS o
             WHERE o.invitation = accept_invitation.code_hash AND o.template <> 'invitation') < 10 THEN
      SELECT t.slug INTO v_slug FROM tenantry.tenants AS t WHERE t.id = v_invite.tenant_id;
      IF v_existing IS NULL THEN
        v_code := app_private.new_code();
        INSERT INTO app_private.address_confirmations (code_hash, invitation, email, expires_at)
        VALUES (app_private.code_hash(v_code), accept_invitation.code_hash, v_email, pg_catalog.now() + interval '1 hour');
        INSERT INTO app_private.outbox (recipient, template, data, invitation)
        VALUES (v_email, 'address_confirmation', pg_catalog.jsonb_build_object('confirmation', v_code, 'tenant', v_slug),
                accept_invitation.code_hash);
      ELSE
        INSERT INTO app_private.outbox (recipient, template, data, invitation)
        VALUES (v_email, 'invitation_existing_account', pg_catalog.jsonb_build_object('tenant', v_slug),
                accept_invitation.code_hash);
      END IF;
    END IF;
    outcome := 'confirmation_sent';
    RETURN NEXT;
    RETURN;
  END IF;

  -- proven: spend the invitation now (of two concurrent accepts, one spends it, the other is refused)
  SELECT c.tenant_id, c.payload, c.created_by INTO v_invite
    FROM tenantry.consume_code('invite', accept_invitation.code_hash, NULL) AS c;
  IF v_invite.tenant_id IS NULL THEN
    RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
  END IF;
  IF v_confirmed THEN
    IF accept_invitation.password IS NULL OR pg_catalog.length(accept_invitation.password) NOT BETWEEN 8 AND 72 THEN
      RAISE EXCEPTION 'invitation refused' USING ERRCODE = 'AP001';
    END IF;
    v_name := COALESCE(NULLIF(pg_catalog.btrim(accept_invitation.display_name), ''), pg_catalog.split_part(v_email, '@', 1));
    -- an identity made for this address meanwhile (a concurrent accept of another invitation)
    -- is not taken over: this accept is refused, and its owner signs in with that password
    INSERT INTO app_private.users (email, password_hash, display_name)
    VALUES (v_email, public.crypt(accept_invitation.password, public.gen_salt('bf', 8)), pg_catalog.left(v_name, 200))
    ON CONFLICT ON CONSTRAINT users_email_key DO NOTHING
    RETURNING id INTO v_proven;
    IF v_proven IS NULL THEN
      RAISE EXCEPTION 'confirmation refused' USING ERRCODE = 'AP002';
    END IF;
  END IF;
  SELECT u.display_name INTO v_name FROM app_private.users AS u WHERE u.id = v_proven;
  INSERT INTO public.members (tenant_id, user_id, role, display_name, email)
  VALUES (v_invite.tenant_id, v_proven, COALESCE(v_invite.payload->>'role', 'member'), v_name, v_email)
  ON CONFLICT ON CONSTRAINT members_pkey DO UPDATE
    SET removed_at = NULL, role = CASE WHEN members.removed_at IS NULL THEN members.role ELSE excluded.role END;
  INSERT INTO tenantry.audit_log (tenant_id, actor_kind, actor_id, action, detail)
  VALUES (v_invite.tenant_id, 'user', v_proven, 'member.joined',
          pg_catalog.jsonb_build_object('role', COALESCE(v_invite.payload->>'role', 'member'), 'invited_by', v_invite.created_by,
                                        'new_identity', v_confirmed));
  SELECT s.session_id, s.expires_at INTO accept_invitation.session_id, accept_invitation.expires_at
    FROM tenantry.start_session(v_proven, v_invite.tenant_id, 'user', accept_invitation.ttl_seconds) AS s;
  outcome := 'joined';
  accept_invitation.user_id := v_proven;
  accept_invitation.tenant_id := v_invite.tenant_id;
  RETURN NEXT;
END
$fn$;
REVOKE ALL ON FUNCTION app.accept_invitation(bytea, text, text, text, bytea, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app.accept_invitation(bytea, text, text, text, bytea, integer) TO :"app_role";
