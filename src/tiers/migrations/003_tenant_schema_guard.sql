-- tiers 003: a tenant schema's tables hold the rows of their own tenant only
-- RLS admits a row whose tenant column is the CURRENT tenant, wherever the table is: SQL injected
-- under tenant A could insert A's rows into tenant B's schema by naming it (`t_b.notes`), where B
-- never sees them but stores them. Each registered tenant table of a tenant schema gets a CHECK
-- constraint binding its tenant column to the schema's tenant (`tenantry_schema_tenant`), which
-- refuses every other tenant's row for every role, the owner's copies included (23514).
-- Which tenant a schema belongs to is recorded here, in the database that holds it, when the
-- schema is created for a tenant (createTenantSchema's `tenant`) or a tenant is placed in it
-- (Placements.assign); a schema placed before this migration takes the tenant the route check
-- knows (tenantry.local_tenants). Runs as the owner role.
CREATE TABLE IF NOT EXISTS tenantry.tenant_schemas (
  schema text PRIMARY KEY CHECK (schema ~ '^[a-z_][a-z0-9_]{0,62}$'),
  -- the schema the record is about: a schema dropped and made again under the same name is a new one
  schema_oid oid NOT NULL,
  tenant_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- the owner's alone, like the route state next to it: RLS on with no policy
ALTER TABLE tenantry.tenant_schemas ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
REVOKE ALL ON tenantry.tenant_schemas FROM PUBLIC, :TENANTRY_APP_ROLE;

-- Adds the guard to every registered tenant table of the schema that lacks it, and validates one
-- left NOT VALID. Returns how many tables it guarded. A schema nobody claimed (and no placed
-- tenant names) is left alone (0). Added NOT VALID first (a short ACCESS EXCLUSIVE lock), then
-- validated under SHARE UPDATE EXCLUSIVE (writes go on); rows of another tenant already there
-- leave it NOT VALID with a WARNING (doctor: TENANT_SCHEMA_UNGUARDED): new rows are refused all
-- the same. A partitioned table takes it validated at once (its partitions inherit it).
CREATE OR REPLACE FUNCTION tenantry.guard_tenant_schema(p_schema text) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_oid oid := to_regnamespace(quote_ident(p_schema));
  v_tenant uuid;
  r record;
  v_valid boolean;
  v_def text;
  n integer := 0;
  cond text;
BEGIN
  IF v_oid IS NULL THEN
    RETURN 0;
  END IF;
  SELECT s.tenant_id INTO v_tenant FROM tenantry.tenant_schemas s WHERE s.schema = p_schema AND s.schema_oid = v_oid;
  IF v_tenant IS NULL THEN
    -- placed before the record existed: the tenant the route check serves from this schema
    SELECT l.tenant_key::uuid INTO v_tenant FROM tenantry.local_tenants l
     WHERE l.schema = p_schema ORDER BY (l.state = 'active') DESC, l.updated_at DESC LIMIT 1;
    IF v_tenant IS NULL THEN
      RETURN 0;
    END IF;
    INSERT INTO tenantry.tenant_schemas (schema, schema_oid, tenant_id) VALUES (p_schema, v_oid, v_tenant)
    ON CONFLICT (schema) DO UPDATE SET schema_oid = excluded.schema_oid, tenant_id = excluded.tenant_id, created_at = now();
  END IF;
  FOR r IN SELECT t.relid, t.tenant_column, k.relkind FROM tenantry.registered_tables t JOIN pg_class k ON k.oid = t.relid::oid
            WHERE t.kind = 'tenant' AND k.relnamespace = v_oid AND k.relkind IN ('r', 'p') ORDER BY k.relname LOOP
    cond := format('%I = %L::uuid', r.tenant_column, v_tenant);
    v_def := NULL;
    SELECT con.convalidated, pg_get_constraintdef(con.oid) INTO v_valid, v_def FROM pg_constraint con
     WHERE con.conrelid = r.relid::oid AND con.conname = 'tenantry_schema_tenant';
    IF v_def IS NOT NULL AND position(v_tenant::text IN v_def) = 0 THEN
      -- bound to another tenant (a schema handed to a new tenant): bind it again
      EXECUTE format('ALTER TABLE %s DROP CONSTRAINT tenantry_schema_tenant', r.relid);
      v_def := NULL;
    ELSIF v_def IS NOT NULL AND v_valid THEN
      CONTINUE;
    END IF;
    BEGIN
      IF v_def IS NULL AND r.relkind = 'p' THEN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT tenantry_schema_tenant CHECK (%s)', r.relid, cond);
      ELSE
        IF v_def IS NULL THEN
          EXECUTE format('ALTER TABLE %s ADD CONSTRAINT tenantry_schema_tenant CHECK (%s) NOT VALID', r.relid, cond);
        END IF;
        BEGIN
          EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT tenantry_schema_tenant', r.relid);
        EXCEPTION WHEN check_violation THEN
          RAISE WARNING 'tenantry: % holds rows of another tenant than its schema''s: its guard stays NOT VALID (new rows are refused); see tenantry doctor', r.relid;
        END;
      END IF;
      n := n + 1;
    EXCEPTION WHEN check_violation OR insufficient_privilege THEN
      RAISE WARNING 'tenantry: % could not take its schema''s tenant guard (%): see tenantry doctor', r.relid, SQLSTATE;
    END;
  END LOOP;
  RETURN n;
END
$fn$;

-- Records that the schema belongs to the tenant, then guards its tables. A schema that belongs to
-- another tenant is refused (TR007); a schema that does not exist (yet) is left alone (0).
CREATE OR REPLACE FUNCTION tenantry.claim_tenant_schema(p_schema text, p_tenant uuid) RETURNS integer
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_oid oid := to_regnamespace(quote_ident(p_schema));
  v_owner uuid;
BEGIN
  IF v_oid IS NULL OR p_tenant IS NULL THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.tenant_schema:' || p_schema));
  SELECT s.tenant_id INTO v_owner FROM tenantry.tenant_schemas s WHERE s.schema = p_schema AND s.schema_oid = v_oid;
  IF v_owner IS NOT NULL AND v_owner <> p_tenant THEN
    RAISE EXCEPTION 'tenantry: schema % belongs to another tenant', p_schema USING ERRCODE = 'TR007',
      HINT = 'give each tenant a schema of its own (drop the schema first to hand it over)';
  END IF;
  INSERT INTO tenantry.tenant_schemas (schema, schema_oid, tenant_id) VALUES (p_schema, v_oid, p_tenant)
  ON CONFLICT (schema) DO UPDATE SET schema_oid = excluded.schema_oid, tenant_id = excluded.tenant_id, created_at = now()
  WHERE tenant_schemas.schema_oid IS DISTINCT FROM excluded.schema_oid OR tenant_schemas.tenant_id IS DISTINCT FROM excluded.tenant_id;
  RETURN tenantry.guard_tenant_schema(p_schema);
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.guard_tenant_schema(text), tenantry.claim_tenant_schema(text, uuid) FROM PUBLIC;

-- the schemas of tenants placed before this migration: guarded now
DO $do$
DECLARE
  s text;
BEGIN
  FOR s IN SELECT DISTINCT l.schema FROM tenantry.local_tenants l
            WHERE l.schema IS NOT NULL AND to_regnamespace(quote_ident(l.schema)) IS NOT NULL ORDER BY 1 LOOP
    PERFORM tenantry.guard_tenant_schema(s);
  END LOOP;
END
$do$;
