-- metering 001: usage metering for billing (src/metering). Two append-only ledgers, so no
-- count can drift and no row is hot:
--  * tenantry.usage_row_deltas: rows written, appended by statement-level AFTER triggers (with
--    transition tables) in the SAME transaction as the write: a rolled-back write leaves no
--    usage, a committed one always does. One row per (statement, tenant), never an UPDATE of a
--    per-tenant counter (which would serialise every writer of a tenant on one row lock).
--  * tenantry.usage_events: everything else (requests, database time, job runs, storage
--    samples), each under an idempotency key unique per tenant: a retried flush is a no-op
--    (ON CONFLICT DO NOTHING), so a usage unit is counted exactly once.
-- Writers are the owner role (the recorder's pool) and the trigger (SECURITY DEFINER, owned by the
-- owner role). The app role only reads its own tenant's rows, through RLS.

CREATE TABLE IF NOT EXISTS tenantry.usage_events (
  tenant_id uuid NOT NULL,
  idempotency_key text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
  meter text NOT NULL CHECK (meter ~ '^[a-z][a-z0-9_]{0,62}$'),
  quantity bigint NOT NULL CHECK (quantity >= 0),
  -- what the unit was about: a table (storage), a route, a queue; never PII
  subject text CHECK (length(subject) <= 200),
  occurred_at timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE INDEX IF NOT EXISTS usage_events_window_idx ON tenantry.usage_events (tenant_id, occurred_at);
-- the export reads every tenant's events of a window
CREATE INDEX IF NOT EXISTS usage_events_time_idx ON tenantry.usage_events (occurred_at);
REVOKE ALL ON tenantry.usage_events FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry.usage_events ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS usage_events_own ON tenantry.usage_events;
-- read-only for the app: a tenant sees its own usage (its admins' usage page), nobody else's,
-- and cannot add, change or remove any (no INSERT/UPDATE/DELETE grant, no write policy)
CREATE POLICY usage_events_own ON tenantry.usage_events FOR SELECT TO :TENANTRY_APP_ROLE
  USING (tenant_id = (SELECT tenantry.home_tenant_id()));
GRANT SELECT ON tenantry.usage_events TO :TENANTRY_APP_ROLE;

CREATE TABLE IF NOT EXISTS tenantry.usage_row_deltas (
  -- stable: the exported event's id (rows_written:<id>)
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid NOT NULL,
  table_name text NOT NULL,
  op "char" NOT NULL CHECK (op IN ('i', 'u', 'd')),
  rows bigint NOT NULL CHECK (rows > 0),
  -- the writing transaction's start (now()): the window the write is billed in
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS usage_row_deltas_window_idx ON tenantry.usage_row_deltas (tenant_id, at);
CREATE INDEX IF NOT EXISTS usage_row_deltas_time_idx ON tenantry.usage_row_deltas (at);
REVOKE ALL ON tenantry.usage_row_deltas FROM PUBLIC, :TENANTRY_APP_ROLE;
ALTER TABLE tenantry.usage_row_deltas ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS usage_row_deltas_own ON tenantry.usage_row_deltas;
CREATE POLICY usage_row_deltas_own ON tenantry.usage_row_deltas FOR SELECT TO :TENANTRY_APP_ROLE
  USING (tenant_id = (SELECT tenantry.home_tenant_id()));
GRANT SELECT ON tenantry.usage_row_deltas TO :TENANTRY_APP_ROLE;

-- The trigger body: one INSERT … SELECT … GROUP BY over the statement's transition table. The
-- rows it reads are those the statement really changed (an ON CONFLICT DO NOTHING that skipped
-- a row does not count), all of them already through the table's RLS check. SECURITY DEFINER
-- (owner) because the app role may not write the ledger itself; TG_ARGV[0] is the tenant column.
CREATE OR REPLACE FUNCTION tenantry.meter_rows_written() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  op "char" := CASE TG_OP WHEN 'INSERT' THEN 'i' WHEN 'UPDATE' THEN 'u' ELSE 'd' END;
  tbl text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  IF TG_ARGV[0] = 'tenant_id' THEN
    -- static SQL (plan cached per table) for the usual column name
    IF TG_OP = 'DELETE' THEN
      INSERT INTO tenantry.usage_row_deltas (tenant_id, table_name, op, rows)
      SELECT o.tenant_id, tbl, op, count(*) FROM metered_old o GROUP BY o.tenant_id;
    ELSE
      INSERT INTO tenantry.usage_row_deltas (tenant_id, table_name, op, rows)
      SELECT n.tenant_id, tbl, op, count(*) FROM metered_new n GROUP BY n.tenant_id;
    END IF;
  ELSE
    EXECUTE format('INSERT INTO tenantry.usage_row_deltas (tenant_id, table_name, op, rows)
                    SELECT t.%1$I, $1, $2, count(*) FROM %2$I t GROUP BY t.%1$I',
                   TG_ARGV[0], CASE WHEN TG_OP = 'DELETE' THEN 'metered_old' ELSE 'metered_new' END)
      USING tbl, op;
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.meter_rows_written() FROM PUBLIC;

-- Installs (or removes) the three metering triggers on a registered tenant table. A trigger with
-- transition tables takes one event only (PostgreSQL's rule), hence three.
CREATE OR REPLACE FUNCTION tenantry.meter_tenant_table(tbl regclass, metered boolean DEFAULT true) RETURNS void
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  col name := (SELECT r.tenant_column FROM tenantry.registered_tables r WHERE r.relid = tbl AND r.kind = 'tenant');
BEGIN
  IF metered AND col IS NULL THEN
    RAISE EXCEPTION 'tenantry: % is not registered as a tenant table', tbl USING ERRCODE = '55000',
      HINT = format('SELECT tenantry.register_tenant_table(%L) first', tbl::text);
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS tenantry_meter_insert ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS tenantry_meter_update ON %s', tbl);
  EXECUTE format('DROP TRIGGER IF EXISTS tenantry_meter_delete ON %s', tbl);
  IF metered THEN
    EXECUTE format('CREATE TRIGGER tenantry_meter_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS metered_new
                    FOR EACH STATEMENT EXECUTE FUNCTION tenantry.meter_rows_written(%L)', tbl, col);
    EXECUTE format('CREATE TRIGGER tenantry_meter_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS metered_new
                    FOR EACH STATEMENT EXECUTE FUNCTION tenantry.meter_rows_written(%L)', tbl, col);
    EXECUTE format('CREATE TRIGGER tenantry_meter_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS metered_old
                    FOR EACH STATEMENT EXECUTE FUNCTION tenantry.meter_rows_written(%L)', tbl, col);
  END IF;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry.meter_tenant_table(regclass, boolean) FROM PUBLIC;
