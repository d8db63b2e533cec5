-- metering 002: a move's copy is not billed. The move writes the tenant's rows at the target
-- (and deletes them at the source after the switch) through owner connections marked
-- tenantry.moving; the row-metering trigger now skips those statements, so rows_written counts
-- what the tenant wrote, once, wherever it lives. Same function, one check first.

CREATE OR REPLACE FUNCTION tenantry.meter_rows_written() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  op "char" := CASE TG_OP WHEN 'INSERT' THEN 'i' WHEN 'UPDATE' THEN 'u' ELSE 'd' END;
  tbl text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
BEGIN
  -- a move copying the tenant's rows to its new place, or removing them from the old one, wrote
  -- nothing the tenant did: not billed. tenantry.is_moving() is true only on the move's own
  -- connections (the owner role or a superuser with tenantry.moving on): the app role cannot
  -- set it to write unbilled.
  IF tenantry.is_moving() THEN
    RETURN NULL;
  END IF;
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
