-- onboard 001: what each tenant's onboarding has done, step by step. Runs as the owner role.
--
-- One row per onboarded tenant, written in the same transaction as the tenant's catalog row
-- (so a tenant made by onboarding always has its record, and a crash leaves both or neither);
-- each later step is recorded when it completed, so a re-run continues after the last one. The
-- inputs are kept to tell a re-run of the same onboarding from a conflicting one. Control plane
-- only: no grant to the app role, RLS enabled and forced with no policy (deny by default; the
-- owner role reads it with its BYPASSRLS). Idempotent.
CREATE TABLE IF NOT EXISTS tenantry.onboardings (
  tenant_id uuid PRIMARY KEY REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  slug text NOT NULL UNIQUE,
  name text NOT NULL,
  plan text,
  owner_email text,
  -- where the placement policy put the tenant (decided once, at creation)
  target jsonb NOT NULL,
  -- completed steps and when: { "provision": "2026-12-06T…", … }
  steps jsonb NOT NULL DEFAULT '{}',
  attempts integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  last_error text CHECK (length(last_error) <= 2000),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz
);
REVOKE ALL ON tenantry.onboardings FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry.onboardings ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
