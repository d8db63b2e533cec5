/**
 * TENANTRY_CITUS (docs/citus.md, "The reference server on Citus"): `1` runs the reference server
 * on the Citus coordinator that DATABASE_URL names. Refused, with one line, without DATABASE_URL
 * (the embedded PostgreSQL has no Citus) and with TENANTRY_CLUSTERS (Citus spreads tenants over
 * its own workers; the server's extra PostgreSQL servers are a tier of their own, off in this mode).
 */
export function citusModeFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.TENANTRY_CITUS ?? '0';
  if (value !== '0' && value !== '1') throw new Error(`TENANTRY_CITUS must be 0 or 1, not ${JSON.stringify(value)}`);
  if (value === '0') return false;
  if (!env.DATABASE_URL)
    throw new Error(
      'TENANTRY_CITUS=1 needs DATABASE_URL naming the Citus coordinator (a superuser URL of a database with the citus extension and its workers)',
    );
  if (env.TENANTRY_CLUSTERS)
    throw new Error(
      'TENANTRY_CLUSTERS cannot be used with TENANTRY_CITUS=1: Citus spreads tenants over its own workers (leave TENANTRY_CLUSTERS out)',
    );
  return true;
}

/**
 * The environment `monitoringFromEnv` reads in Citus mode: per-tenant database limits and fair
 * checkout default to off (a Citus `TenantPool` carries neither yet); set to `on`, refused with
 * one line. The activity counts (TENANTRY_ACTIVITY) stay as set: a Citus pool counts them, untagged.
 */
export function citusMonitoringEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  for (const name of ['TENANTRY_DB_LIMITS', 'TENANTRY_FAIR_CHECKOUT'])
    if (![undefined, '', 'off'].includes(env[name]?.trim().toLowerCase()))
      throw new Error(
        `${name}=${env[name]} cannot be used with TENANTRY_CITUS=1: a Citus TenantPool carries no per-tenant database limits nor fair checkout yet (leave it out or set it off)`,
      );
  return { ...env, TENANTRY_DB_LIMITS: 'off', TENANTRY_FAIR_CHECKOUT: 'off' };
}
