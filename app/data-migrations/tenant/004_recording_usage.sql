-- tenant/: rows written to recordings are metered (tenantry/metering), in the writing transaction.
-- Idempotent: the home database's shared table has it already (app/migrations/008_recording_usage.sql).
SELECT tenantry.meter_tenant_table('recordings');
