import type { Queryable } from '../catalog/tenant-catalog.js';

/**
 * Installs (or, with `metered: false`, removes) the rows-written triggers on a registered tenant
 * table: three statement-level AFTER triggers with transition tables, which append one ledger
 * row per statement and tenant in the writing transaction. Run as the owner role, like
 * `register_tenant_table` (in SQL: `select tenantry.meter_tenant_table('recordings')`).
 *
 * @example
 * await meterTenantTable(ownerPool, 'recordings');
 */
export async function meterTenantTable(db: Queryable, table: string, metered = true): Promise<void> {
  await db.query('select tenantry.meter_tenant_table($1::regclass, $2)', [table, metered]);
}
