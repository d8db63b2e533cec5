-- migrate 001: what each location of this database has applied of the application's migrations
-- The layout `tenantry install` created before the library schema was versioned; idempotent over
-- it (an install of that era is brought here by running it again). Runs as the owner role.
-- migrations: what each location of this database has applied
CREATE TABLE IF NOT EXISTS tenantry.schema_migrations (
  target text NOT NULL,
  version integer NOT NULL,
  name text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('global', 'tenant')),
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, version)
);
CREATE TABLE IF NOT EXISTS tenantry.migration_failures (
  target text PRIMARY KEY,
  version integer,
  name text,
  sqlstate text,
  message text NOT NULL,
  failed_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON tenantry.schema_migrations, tenantry.migration_failures FROM PUBLIC, :TENANTRY_APP_ROLE;
