-- The reference server's tenant data, wherever a tenant lives: the shared tables of a cluster's
-- shared database, a schema-tier tenant's schema, a database-tier tenant's database. Applied by
-- `tenantry migrate` (migrateEverywhere), and by migrateLocation for a location prepared for a
-- move (app/tiers/tenant-tiers.ts).
--
-- tenant/: once per tenant location, unqualified names (the location's schema is first on the
-- search path). The tables of app/migrations 002 and 004, minus one thing: the owner's foreign
-- key to the memberships, which stay in the home database (pinned) and which another database
-- cannot reference; the server sets the owner to the caller, a member. The home database's
-- shared tables came from app/migrations 002 and 004 (with that foreign key): there this
-- migration is recorded as applied without running (a baseline), the later ones run as anywhere.

CREATE TABLE recordings (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  id uuid NOT NULL DEFAULT gen_random_uuid(),
  owner_id uuid NOT NULL,
  title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
  mime_type text NOT NULL CHECK (mime_type ~ '^audio/[a-z0-9][a-z0-9.+-]{0,62}$'),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX recordings_page_idx ON recordings (tenant_id, created_at DESC, id DESC);
CREATE INDEX recordings_owner_idx ON recordings (tenant_id, owner_id);
SELECT tenantry.register_tenant_table('recordings');

CREATE TABLE tenant_event_streams (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id() PRIMARY KEY,
  route text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (route ~ '^[0-9a-f]{32}$'),
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
SELECT tenantry.register_tenant_table('tenant_event_streams');

CREATE TABLE tenant_events (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  seq bigint NOT NULL CHECK (seq > 0),
  topic text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object' AND pg_column_size(payload) <= 8192),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);
SELECT tenantry.register_tenant_table('tenant_events');
