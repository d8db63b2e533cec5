import pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { runDoctor, type DoctorReport } from '../../policy/doctor.js';
import { withDatabase } from '../provision.js';
import { listMigrationTargets } from './migration-target.js';
import pLimit from 'p-limit';
import { reconcileTenantHolds } from '../tenant-holds.js';

/** One database's audit: its data schemas and the tenant schemas the catalog places in it. */
export interface DatabaseAudit {
  cluster: string;
  database: string;
  schemas: string[];
  /** Null when the database could not be audited (`error` says why). */
  report: DoctorReport | null;
  error: string | null;
}

/** The answer of {@link doctorEverywhere}: `ok` when every database was audited without an error-level finding. */
export interface PlacementsAudit {
  ok: boolean;
  databases: DatabaseAudit[];
}

/**
 * `doctor` in every placement the catalog knows: each cluster's shared database and each tenant
 * database (their data schemas), with every schema-tier tenant's schema audited in its database.
 * The same targets as `tenantry migrate`. `clusters`: each cluster's shared database URL, as a
 * superuser or the owner role (doctor reads the catalog; it changes nothing).
 *
 * @example
 * const audit = await doctorEverywhere({ catalog: homeOwnerPool, clusters: { home: adminUrl } });
 * for (const d of audit.databases) if (!d.report?.ok) console.log(d.database, d.error ?? formatDoctorReport(d.report!));
 */
export async function doctorEverywhere(options: {
  catalog: Queryable;
  clusters: Record<string, string>;
  concurrency?: number;
}): Promise<PlacementsAudit> {
  const targets = await listMigrationTargets(options.catalog, options.clusters);
  const databases = targets.filter((t) => t.schema === null);
  const audits: DatabaseAudit[] = [];
  await pLimit(Math.max(1, options.concurrency ?? 4)).map(databases, async (db) => {
    const tenantSchemas = targets
      .filter((t) => t.schema !== null && t.cluster === db.cluster && t.database === db.database)
      .map((t) => t.schema!);
    const audit: DatabaseAudit = { cluster: db.cluster, database: db.database, schemas: [], report: null, error: null };
    audits.push(audit);
    try {
      const base = options.clusters[db.cluster];
      if (base === undefined) throw new Error(`No connection is configured for cluster ${db.cluster}`);
      const url = db.kind === 'shared' ? base : withDatabase(base, db.database);
      const dataSchemas = await readDataSchemas(url);
      audit.schemas = [...dataSchemas, ...tenantSchemas];
      audit.report = await runDoctor(url, { schemas: audit.schemas });
    } catch (error) {
      audit.error = (error as Error).message;
    }
  });
  // holds of suspended and deleted tenants that do not match the catalog (a status change that
  // stopped half-way): reported on the database concerned; repaired by install --everywhere
  const holds = await reconcileTenantHolds({ ...options, dryRun: true }).catch(() => undefined);
  for (const h of holds?.databases ?? []) {
    const audit = audits.find((a) => a.cluster === h.cluster && a.database === h.database);
    if (!audit?.report || h.error !== null) continue;
    if (h.written > 0)
      audit.report.findings.push({
        code: 'TENANT_HOLD_MISSING',
        severity: 'error',
        object: `${h.cluster}/${h.database}`,
        message: `${h.written} suspended or deleted tenant(s) placed here are not held here (tenantry.inactive_tenants): their statements are served in this database. A status change stopped half-way.`,
        fix: 'tenantry install --everywhere (reconcileTenantHolds), or run the same tenants suspend/delete again',
      });
    if (h.released > 0)
      audit.report.findings.push({
        code: 'TENANT_HOLD_STALE',
        severity: 'warning',
        object: `${h.cluster}/${h.database}`,
        message: `${h.released} tenant(s) the catalog says are active are still held here: their statements are refused (TR005/TR006) in this database. A resume stopped half-way.`,
        fix: 'tenantry install --everywhere (reconcileTenantHolds), or run the same tenants resume again',
      });
    audit.report.ok = audit.report.findings.every((f) => f.severity !== 'error');
  }
  audits.sort(
    (a, b) =>
      databases.findIndex((d) => d.cluster === a.cluster && d.database === a.database) -
      databases.findIndex((d) => d.cluster === b.cluster && d.database === b.database),
  );
  return { ok: audits.every((a) => a.report?.ok === true), databases: audits };
}

async function readDataSchemas(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ value: string | null }>(
      `select value from tenantry.meta where key = 'data_schemas'`,
    );
    return (rows[0]?.value || 'public').split(',').filter(Boolean);
  } finally {
    await client.end();
  }
}
