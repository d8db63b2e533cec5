-- Usage metering (tenantry/metering): rows written to recordings are recorded by the library's
-- statement-level triggers, in the transaction of the write.
SELECT tenantry.meter_tenant_table('public.recordings');
