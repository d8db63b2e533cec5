import pg from 'pg';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { rotateContextSecret, type RotateContextSecretOptions } from '../policy/rotation.js';
import { withDatabase } from './provision.js';
import { listMigrationTargets } from './migrate/migration-target.js';

/** One database's rotation: `rotated` (false: the secret already was the current one), or the error. */
export interface DatabaseRotation {
  cluster: string;
  database: string;
  ok: boolean;
  rotated: boolean;
  error: string | null;
}

/**
 * {@link rotateContextSecret} in every database the catalog knows (the home database, each
 * cluster's shared database, each database-tier tenant's), as `tenantry install --everywhere`
 * reaches them: the context key is stored per database, and a tenant placed in its own database
 * verifies its context there. One failure does not stop the others; run it again (a database
 * already rotated is left as it is).
 */
export async function rotateContextSecretEverywhere(
  options: RotateContextSecretOptions & { catalog: Queryable; clusters: Record<string, string>; secret: string },
): Promise<{ ok: boolean; databases: DatabaseRotation[] }> {
  const targets = (await listMigrationTargets(options.catalog, options.clusters)).filter((t) => t.schema === null);
  const databases: DatabaseRotation[] = [];
  for (const target of targets) {
    const result: DatabaseRotation = {
      cluster: target.cluster,
      database: target.database,
      ok: false,
      rotated: false,
      error: null,
    };
    databases.push(result);
    try {
      const base = options.clusters[target.cluster];
      if (base === undefined) throw new ConfigurationError(`No connection is configured for cluster ${target.cluster}`);
      const client = new pg.Client({
        connectionString: target.kind === 'shared' ? base : withDatabase(base, target.database),
        application_name: 'tenantry rotate',
      });
      await client.connect();
      try {
        result.rotated = (await rotateContextSecret(client, options.secret, options)).rotated;
        result.ok = true;
      } finally {
        await client.end();
      }
    } catch (error) {
      result.error = (error as Error).message;
    }
  }
  return { ok: databases.every((d) => d.ok), databases };
}
