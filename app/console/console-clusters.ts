import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { Queryable } from 'tenantry';

/** One cluster's load as the console shows it. */
export interface ClusterLoad {
  name: string;
  status: string;
  capacity: number;
  /** Live tenants (not deleted) placed on it, per tier. */
  tiers: { shared: number; schema: number; database: number };
  tenants: number;
  /** Connections to the cluster now (pg_stat_activity), null when the console has no URL for it or it did not answer. */
  connections: number | null;
  /** Bytes of the cluster's shared database and of the tenant databases placed on it (those it may connect to). */
  databaseBytes: number | null;
  /** Why the figures above are missing (a connection refused, a timeout): never the URL. */
  error: string | null;
}

/** Each question to a cluster is bounded: connecting and each statement. */
const CLUSTER_TIMEOUT_MS = 3_000;

/**
 * `GET /console/api/clusters/load`: every cluster of the catalog with its live tenants per tier,
 * and, for the clusters the console has a URL of, its connections now and the size of its
 * databases (the shared one and the tenant databases placed there). A cluster that does not
 * answer within 3 s is shown with its error, not waited for.
 */
export function consoleClusterRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; clusterUrls: Record<string, string> },
): void {
  const { catalogPool, clusterUrls } = options;
  api.get('/console/api/clusters/load', async () => {
    const { rows } = await catalogPool.query<{
      name: string;
      status: string;
      capacity: number;
      tier: string | null;
      n: number;
      databases: string[] | null;
    }>(
      `select c.name, c.status, c.capacity, x.tier, coalesce(x.n, 0)::int as n, x.databases
         from tenantry.clusters c
         left join (select coalesce(p.cluster, 'home') as cluster, coalesce(p.tier, 'shared') as tier, count(*) as n,
                           array_agg(p.database) filter (where p.tier = 'database') as databases
                      from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id
                     where t.status <> 'deleted' group by 1, 2) x on x.cluster = c.name
        order by c.name, x.tier`,
    );
    const clusters = new Map<string, ClusterLoad & { databases: string[] }>();
    for (const r of rows) {
      let c = clusters.get(r.name);
      if (!c) {
        c = {
          name: r.name,
          status: r.status,
          capacity: r.capacity,
          tiers: { shared: 0, schema: 0, database: 0 },
          tenants: 0,
          connections: null,
          databaseBytes: null,
          error: null,
          databases: [],
        };
        clusters.set(r.name, c);
      }
      if (r.tier === 'shared' || r.tier === 'schema' || r.tier === 'database') c.tiers[r.tier] += r.n;
      c.tenants += r.n;
      c.databases.push(...(r.databases ?? []));
    }
    await Promise.all(
      [...clusters.values()].map(async (c) => {
        const url = clusterUrls[c.name];
        if (url === undefined) return;
        try {
          Object.assign(c, await askCluster(url, c.databases));
        } catch (error) {
          c.error = describe(error);
        }
      }),
    );
    return { clusters: [...clusters.values()].map(({ databases: _databases, ...c }) => c) };
  });
}

async function askCluster(url: string, databases: string[]): Promise<{ connections: number; databaseBytes: number }> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CLUSTER_TIMEOUT_MS,
    statement_timeout: CLUSTER_TIMEOUT_MS,
    query_timeout: CLUSTER_TIMEOUT_MS + 500,
    application_name: 'tenantry-console',
  });
  client.on('error', () => undefined); // a connection lost after the answer: nothing to do
  await client.connect();
  try {
    const { rows } = await client.query<{ connections: number; bytes: string }>(
      `select (select count(*)::int from pg_stat_activity where backend_type = 'client backend') as connections,
              (select coalesce(sum(pg_database_size(d.oid)), 0)::text from pg_database d
                where (d.datname = current_database() or d.datname = any($1::text[]))
                  and has_database_privilege(d.datname, 'CONNECT')) as bytes`,
      [databases],
    );
    return { connections: rows[0]!.connections, databaseBytes: Number(rows[0]!.bytes) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A cluster's failure in words an operator can act on, without the URL (it may carry a password). */
function describe(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === '57014') return 'timed out';
  const message = (error as Error).message ?? '';
  if (/timeout/i.test(message)) return 'timed out';
  return typeof code === 'string' ? `failed (${code})` : 'did not answer';
}
