import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { validIdentifier } from '../../policy/identifiers.js';
import type { Placement, PlacementTarget } from '../placements.js';

/** A move's target with every field present, identifiers validated. */
export function normalizeTarget(target: PlacementTarget): Required<PlacementTarget> {
  if (!target || !['shared', 'schema', 'database'].includes(target.tier))
    throw new InvalidArgumentError('tier must be shared, schema or database', 'tier');
  const schema = target.schema ? validIdentifier(target.schema, 'schema') : null;
  const database = target.database ? validIdentifier(target.database, 'database') : null;
  if ((target.tier === 'schema') !== (schema !== null))
    throw new InvalidArgumentError('the schema tier, and only it, names a schema', 'schema');
  if (target.tier === 'database' && !database)
    throw new InvalidArgumentError('the database tier needs a database', 'database');
  return { tier: target.tier, cluster: target.cluster, database, schema };
}

/** The same database (cluster and database name). */
export function sameLocation(a: PlacementTarget | Placement, b: PlacementTarget): boolean {
  return a.cluster === b.cluster && (a.database ?? null) === (b.database ?? null);
}

/** The same database and schema: where the tenant's rows are. */
export function samePlacement(a: PlacementTarget | Placement, b: PlacementTarget): boolean {
  return sameLocation(a, b) && (a.schema ?? null) === (b.schema ?? null);
}
