import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { install, type InstallRunOptions } from '../../src/policy/installer.js';
import type { ContextMode } from '../../src/policy/install-sql.js';
import type { BenchServer } from './server.js';

/** Login roles of the benchmark: own names, so a shared server's `tenantry_*` roles stay untouched. */
export interface BenchRoles {
  app: { name: string; password: string };
  owner: { name: string; password: string };
  /** What a TenantRouter reads routes as (the app role may not). */
  router: { name: string; password: string };
  contextSecret: string;
}

export function benchRoles(): BenchRoles {
  const password = randomBytes(12).toString('hex');
  return {
    app: { name: 'tenantry_bench_app', password },
    owner: { name: 'tenantry_bench_owner', password },
    router: { name: 'tenantry_bench_router', password },
    contextSecret: randomBytes(24).toString('hex'),
  };
}

/** The shape of the data: `tenants` tenants, `rowsPerTenant` rows each, ids 1..N unique across tenants. */
export interface DatasetShape {
  tenants: number;
  rowsPerTenant: number;
}

/** Tenant k's id, the same as PostgreSQL's `md5('bench-tenant-' || k)::uuid`. */
export function tenantIdOf(k: number): string {
  const h = createHash('md5').update(`bench-tenant-${k}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Picks a random existing (tenant, id) pair. Row `id` belongs to tenant `id % tenants`. */
export function pairPicker(shape: DatasetShape): () => { tenant: string; id: number } {
  const tenants = Array.from({ length: shape.tenants }, (_, k) => tenantIdOf(k));
  const rows = shape.tenants * shape.rowsPerTenant;
  return () => {
    const id = 1 + Math.floor(Math.random() * rows);
    return { tenant: tenants[id % shape.tenants]!, id };
  };
}

/** install()'s options for the benchmark's roles (signed mode, with its secret, unless `mode` says otherwise). */
export function benchInstallOptions(roles: BenchRoles, mode: ContextMode = 'signed'): InstallRunOptions {
  return {
    appRole: roles.app.name,
    ownerRole: roles.owner.name,
    routerRole: roles.router.name,
    appPassword: roles.app.password,
    ownerPassword: roles.owner.password,
    routerPassword: roles.router.password,
    contextMode: mode,
    ...(mode === 'signed' ? { contextSecret: roles.contextSecret } : {}),
  };
}

/** Tenantry installed in `url` with the benchmark's roles (signed mode unless `mode` says otherwise). */
export async function installBench(url: string, roles: BenchRoles, mode: ContextMode = 'signed'): Promise<void> {
  await install(url, benchInstallOptions(roles, mode));
}

/**
 * Installs Tenantry in `database` (in `mode`) and loads `items` as the owner: one
 * insert ... select from generate_series, the primary key built afterwards, then
 * `tenantry.register_tenant_table('items')` and VACUUM ANALYZE.
 */
export async function prepareDatabase(
  server: BenchServer,
  database: string,
  mode: ContextMode,
  roles: BenchRoles,
  shape: DatasetShape,
): Promise<void> {
  await server.createDatabase(database);
  await installBench(server.url(database), roles, mode);
  const owner = new pg.Client({ connectionString: server.url(database, roles.owner) });
  await owner.connect();
  try {
    await owner.query(`create table items (tenant_id uuid not null, id bigint not null, payload text not null)`);
    await owner.query(
      `insert into items (tenant_id, id, payload)
       select md5('bench-tenant-' || (g % $1))::uuid, g, 'item ' || g
         from generate_series(1, $2::bigint) g`,
      [shape.tenants, shape.tenants * shape.rowsPerTenant],
    );
    await owner.query(`alter table items add primary key (tenant_id, id)`);
    await owner.query(`select tenantry.register_tenant_table('items')`);
    await owner.query(`vacuum (analyze) items`);
  } finally {
    await owner.end();
  }
}
