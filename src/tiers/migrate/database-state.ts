import type pg from 'pg';
import { quoteIdent } from '../../policy/identifiers.js';
import { migrateSql } from './migrate-sql.js';

/** A migration a target has applied, as `tenantry.schema_migrations` records it. */
export interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
  appliedAt: Date;
}

/** Why a target did not reach the latest version: the migration (if one was running), its SQLSTATE and message. */
export interface TargetFailure {
  version: number | null;
  migration: string | null;
  /** PostgreSQL's SQLSTATE (`42P07`…); for other errors their code (`MIGRATION_CHANGED`, `CLUSTER_UNKNOWN`, `ECONNREFUSED`), else null. */
  sqlstate: string | null;
  message: string;
  failedAt?: Date;
}

/** What one database knows about its migrations, read in one go before any target runs. */
export interface DatabaseState {
  ownerRole: string;
  appRole: string;
  dataSchemas: string[];
  /** Applied migrations by target (tracking name), in version order. */
  applied: Map<string, AppliedMigration[]>;
  /** Each target's last failure. */
  failures: Map<string, TargetFailure>;
}

/**
 * Reads the roles, data schemas and every target's bookkeeping of one database, creating the
 * bookkeeping tables first where an older install lacks them (as the owner role, under a lock).
 * Two round trips for the whole database, whatever the number of tenant schemas in it.
 */
export async function readDatabaseState(client: pg.ClientBase): Promise<DatabaseState> {
  const { rows } = await client.query<{
    owner: string | null;
    app: string | null;
    schemas: string | null;
    tracked: boolean;
  }>(
    `select (select value from tenantry.meta where key = 'owner_role') as owner,
            (select value from tenantry.meta where key = 'app_role') as app,
            (select value from tenantry.meta where key = 'data_schemas') as schemas,
            to_regclass('tenantry.migration_failures') is not null as tracked`,
  );
  const meta = rows[0]!;
  if (!meta.owner || !meta.app)
    throw new Error('Tenantry is not installed in this database (tenantry.meta has no roles): run tenantry install');
  if (!meta.tracked) {
    await client.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate.setup')); SET LOCAL ROLE ${quoteIdent(meta.owner, 'role')};
      ${migrateSql({ appRole: meta.app })}
      COMMIT;`);
  }
  const [applied, failures] = await Promise.all([
    client.query<{ target: string; version: number; name: string; checksum: string; applied_at: Date }>(
      'select target, version, name, checksum, applied_at from tenantry.schema_migrations order by target, version',
    ),
    client.query<{
      target: string;
      version: number | null;
      name: string | null;
      sqlstate: string | null;
      message: string;
      failed_at: Date;
    }>('select target, version, name, sqlstate, message, failed_at from tenantry.migration_failures'),
  ]);
  const byTarget = new Map<string, AppliedMigration[]>();
  for (const r of applied.rows) {
    let list = byTarget.get(r.target);
    if (!list) byTarget.set(r.target, (list = []));
    list.push({ version: r.version, name: r.name, checksum: r.checksum, appliedAt: r.applied_at });
  }
  return {
    ownerRole: meta.owner,
    appRole: meta.app,
    dataSchemas: (meta.schemas || 'public').split(',').filter(Boolean),
    applied: byTarget,
    failures: new Map(
      failures.rows.map((r) => [
        r.target,
        { version: r.version, migration: r.name, sqlstate: r.sqlstate, message: r.message, failedAt: r.failed_at },
      ]),
    ),
  };
}
