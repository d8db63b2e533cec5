-- Audio recordings: the tenant-owned resource of the reference server.

CREATE TABLE public.recordings (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL,
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
  mime_type text NOT NULL CHECK (mime_type ~ '^audio/[a-z0-9][a-z0-9.+-]{0,62}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  -- the owner must be a member of the same tenant: a composite key cannot point across tenants
  FOREIGN KEY (tenant_id, owner_id) REFERENCES public.members (tenant_id, user_id)
);
-- keyset pagination: newest first, ties broken by id
CREATE INDEX recordings_page_idx ON public.recordings (tenant_id, created_at DESC, id DESC);
CREATE INDEX recordings_owner_idx ON public.recordings (tenant_id, owner_id);
SELECT tenantry.register_tenant_table('public.recordings');
