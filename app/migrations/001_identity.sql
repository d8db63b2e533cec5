-- Identities and memberships.
--
-- A person (app_private.users) is global: one identity may belong to several tenants, and a
-- later issue adds staff who work across tenants. Nothing in app_private is granted to the
-- app role: passwords are checked only inside app.sign_in (003), which runs as the owner.
-- A membership (public.members) belongs to one tenant and is isolated by RLS.

CREATE SCHEMA app_private;
REVOKE ALL ON SCHEMA app_private FROM PUBLIC;
REVOKE ALL ON SCHEMA app_private FROM :"app_role";

CREATE TABLE app_private.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  -- stored lower-cased and trimmed: the unique index then is case-insensitive without citext
  email text NOT NULL UNIQUE
    CHECK (email = lower(btrim(email)) AND length(email) BETWEEN 3 AND 254 AND position('@' IN email) > 1),
  password_hash text NOT NULL CHECK (password_hash LIKE '$2_$%'),
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON app_private.users FROM PUBLIC;
REVOKE ALL ON app_private.users FROM :"app_role";

-- tenant_id defaults to the tenant in context, so the application never names it; the
-- policy's WITH CHECK refuses any other value. There is deliberately no foreign key to
-- tenantry.tenants: the data plane may live in another schema or database than the catalog.
CREATE TABLE public.members (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  user_id uuid NOT NULL REFERENCES app_private.users (id) ON DELETE CASCADE,
  role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
  -- copied from the identity when the membership is made: the app role cannot read app_private
  display_name text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 200),
  email text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
-- sign-in looks a user's memberships up across tenants
CREATE INDEX members_user_id_idx ON public.members (user_id);
SELECT tenantry.register_tenant_table('public.members');
