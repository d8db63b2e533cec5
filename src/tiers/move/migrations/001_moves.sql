-- move 001: the move records and the change capture of online moves
-- The layout `tenantry install` created before the library schema was versioned; idempotent over
-- it (an install of that era is brought here by running it again). Runs as the owner role.
-- tiers: online moves (TenantMover): the move records, in the home catalog
CREATE TABLE IF NOT EXISTS tenantry.moves (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id uuid NOT NULL REFERENCES tenantry.tenants (id) ON DELETE CASCADE,
  source jsonb NOT NULL,
  target jsonb NOT NULL,
  step text NOT NULL DEFAULT 'created' CHECK (step IN ('created', 'prepared', 'capturing', 'copied', 'freezing', 'switched', 'done', 'cleaned', 'rolling_back', 'rolled_back')),
  cursor jsonb NOT NULL DEFAULT '{}',
  error text,
  freeze_ms integer,
  cleanup_after timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  switched_at timestamptz,
  finished_at timestamptz
);
-- the tables the move copies (pinned ones stay): cleanup deletes from these only, whatever was pinned since
ALTER TABLE tenantry.moves ADD COLUMN IF NOT EXISTS tables text[];
-- the change capture chosen at the start ({"mode": "triggers"} or "logical" with its publication, slot, subscription)
ALTER TABLE tenantry.moves ADD COLUMN IF NOT EXISTS capture jsonb;
CREATE UNIQUE INDEX IF NOT EXISTS moves_one_open_per_tenant ON tenantry.moves (tenant_id)
  WHERE step NOT IN ('done', 'cleaned', 'rolled_back');
REVOKE ALL ON tenantry.moves FROM PUBLIC, :TENANTRY_APP_ROLE;

-- change capture for moves out of this database (private: the app never sees it)
CREATE TABLE IF NOT EXISTS tenantry_private.move_changes (
  seq bigserial PRIMARY KEY,
  move_id uuid NOT NULL,
  relid oid NOT NULL,
  pk jsonb NOT NULL,
  op "char" NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS move_changes_move_idx ON tenantry_private.move_changes (move_id, seq);
REVOKE ALL ON tenantry_private.move_changes FROM PUBLIC, :TENANTRY_APP_ROLE;

-- TG_ARGV: move id, tenant id, primary key columns (text[] literal)
CREATE OR REPLACE FUNCTION tenantry_private.capture_move_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  cols text[] := TG_ARGV[2]::text[];
  st text;
  o jsonb;
  n jsonb;
BEGIN
  -- ordered against the mover's freeze (see moveSql's comment)
  SELECT l.state INTO st FROM tenantry.local_tenants l WHERE l.tenant_key = TG_ARGV[1] FOR SHARE;
  IF st IS DISTINCT FROM 'active' THEN
    PERFORM tenantry.refuse_route(coalesce(st, 'moved'));
  END IF;
  IF TG_OP <> 'INSERT' THEN
    SELECT jsonb_object_agg(c, to_jsonb(OLD) -> c) INTO o FROM unnest(cols) AS c;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    SELECT jsonb_object_agg(c, to_jsonb(NEW) -> c) INTO n FROM unnest(cols) AS c;
  END IF;
  IF o IS NOT NULL AND o IS DISTINCT FROM n THEN
    INSERT INTO tenantry_private.move_changes (move_id, relid, pk, op) VALUES (TG_ARGV[0]::uuid, TG_RELID, o, left(TG_OP, 1));
  END IF;
  IF n IS NOT NULL THEN
    INSERT INTO tenantry_private.move_changes (move_id, relid, pk, op) VALUES (TG_ARGV[0]::uuid, TG_RELID, n, left(TG_OP, 1));
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.capture_move_change() FROM PUBLIC;

-- a move's TRUNCATE guard: row triggers do not see a TRUNCATE, which would empty the source under
-- the capture's feet; while a move captures a table's changes, it is refused. TG_ARGV: move id
CREATE OR REPLACE FUNCTION tenantry_private.refuse_move_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  RAISE EXCEPTION 'TRUNCATE of %.% refused: move % is capturing its changes (finish or roll the move back first)', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]
    USING ERRCODE = '55006';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.refuse_move_truncate() FROM PUBLIC;

-- logical capture (PG 15+): one marker row per move, published with the moving tables; when the
-- target shows the value set at the source after the freeze, every earlier change is applied
CREATE TABLE IF NOT EXISTS tenantry_private.move_marks (
  move_id uuid PRIMARY KEY,
  n bigint NOT NULL DEFAULT 0
);
REVOKE ALL ON tenantry_private.move_marks FROM PUBLIC, :TENANTRY_APP_ROLE;

-- logical capture's fence: the lock and the refusal of capture_move_change, nothing recorded
-- (the WAL carries the change). TG_ARGV: tenant id
CREATE OR REPLACE FUNCTION tenantry_private.fence_move_write() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  st text;
BEGIN
  SELECT l.state INTO st FROM tenantry.local_tenants l WHERE l.tenant_key = TG_ARGV[0] FOR SHARE;
  IF st IS DISTINCT FROM 'active' THEN
    PERFORM tenantry.refuse_route(coalesce(st, 'moved'));
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.fence_move_write() FROM PUBLIC;
