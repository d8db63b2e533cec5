import type { Queryable } from '../../catalog/tenant-catalog.js';
import type { MigrationScope } from './migration-files.js';

/**
 * What a target is: a cluster's shared database (`shared`: global migrations, then tenant
 * migrations in its data schemas), a schema-tier tenant's schema (`schema`: tenant migrations
 * only, the schema first on the search path), or a database-tier tenant's database (`database`:
 * like a shared database).
 */
export type TargetKind = 'shared' | 'schema' | 'database';

/** One place the migrations are applied to, in its own transaction. */
export interface MigrationTarget {
  /** `cluster/database` for a database, `cluster/database/schema` for a tenant schema. */
  key: string;
  kind: TargetKind;
  cluster: string;
  /** The database's real name (the cluster's shared database is named by its connection URL). */
  database: string;
  /** The tenant's schema (schema tier); null for a database target. */
  schema: string | null;
  /** Which migrations it takes. */
  scopes: readonly MigrationScope[];
}

/**
 * Every target, from the catalog (the home database, owner role): each cluster's shared
 * database (every cluster not disabled, and every cluster a placement names), each database
 * holding database-tier tenants or schema-tier tenants, each schema-tier tenant's schema.
 * `clusters` maps a cluster to its shared database's URL; a cluster missing from it still yields
 * a target (database `?`), which then fails with CLUSTER_UNKNOWN rather than being skipped silently.
 * Database targets come before schema targets, each group sorted by key.
 */
export async function listMigrationTargets(
  catalog: Queryable,
  clusters: Record<string, string>,
): Promise<MigrationTarget[]> {
  const [{ rows: clusterRows }, { rows: placements }] = await Promise.all([
    catalog.query<{ name: string }>(`select name from tenantry.clusters where status <> 'disabled'`),
    catalog.query<{ tier: 'schema' | 'database'; cluster: string; database: string | null; schema: string | null }>(
      `select distinct tier, cluster, database, schema from tenantry.placements where tier in ('schema', 'database')`,
    ),
  ]);
  const sharedName = (cluster: string): string => {
    const url = clusters[cluster];
    return url === undefined ? '?' : decodeURIComponent(new URL(url).pathname.slice(1)) || 'postgres';
  };
  const databases = new Map<string, MigrationTarget>();
  const addDatabase = (cluster: string, database: string | null): string => {
    const name = database ?? sharedName(cluster);
    const key = `${cluster}/${name}`;
    if (!databases.has(key)) {
      const kind = database === null || name === sharedName(cluster) ? 'shared' : 'database';
      databases.set(key, { key, kind, cluster, database: name, schema: null, scopes: ['global', 'tenant'] });
    }
    return name;
  };
  for (const c of clusterRows) addDatabase(c.name, null);
  const schemas = new Map<string, MigrationTarget>();
  for (const p of placements) {
    const database = addDatabase(p.cluster, p.database);
    if (p.tier === 'schema' && p.schema) {
      const key = `${p.cluster}/${database}/${p.schema}`;
      schemas.set(key, { key, kind: 'schema', cluster: p.cluster, database, schema: p.schema, scopes: ['tenant'] });
    }
  }
  const byKey = (a: MigrationTarget, b: MigrationTarget) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
  return [...[...databases.values()].sort(byKey), ...[...schemas.values()].sort(byKey)];
}
