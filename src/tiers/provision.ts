import pg from 'pg';
import { install, type InstallRunOptions } from '../policy/installer.js';
import { quoteIdent, validIdentifier } from '../policy/identifiers.js';
import { TenantryError } from '../errors/tenantry-error.js';
import { SqlState, sqlStateOf } from '../errors/sqlstate.js';
import { toTenantId } from '../context/tenant-id.js';

/** Schemas that are never a tenant's: the shared tables, Tenantry's own, PostgreSQL's. */
const RESERVED_SCHEMAS = /^(public|tenantry|tenantry_private|information_schema|pg_.*)$/;

/** Options of {@link createTenantSchema}. */
export interface TenantSchemaOptions {
  /**
   * The tenant the schema is for: recorded in the database (`tenantry.tenant_schemas`), and every
   * registered tenant table of the schema, now and after each migration, refuses rows of any
   * other tenant (a CHECK constraint, `tenantry_schema_tenant`). Without it, the schema is claimed
   * when a tenant is placed in it (`Placements.assign`). A schema already claimed by another
   * tenant is refused (`TENANT_SCHEMA_TAKEN`).
   */
  tenant?: string;
}

/**
 * Creates (idempotently) the schema of a schema-tier tenant in the database `owner` is connected
 * to, and runs `ddl` in it as the owner role: the DDL names its tables unqualified (the schema is
 * first on the search path) and registers them with `tenantry.register_tenant_table`, so the
 * second wall (RLS) stands in the schema too, and the schema's tenant guard binds their tenant
 * column to `options.tenant`. The app (and support) role get USAGE, nothing else. One
 * transaction: a failing DDL leaves no half-made schema.
 *
 * @example
 * await createTenantSchema(ownerPool, 't_acme', `create table notes (...); select tenantry.register_tenant_table('notes');`, { tenant: acmeId });
 */
export async function createTenantSchema(
  owner: pg.Pool | pg.ClientBase,
  schema: string,
  ddl: string,
  options: TenantSchemaOptions = {},
): Promise<void> {
  const tenant = options.tenant === undefined ? undefined : toTenantId(options.tenant);
  const s = quoteIdent(schema, 'schema');
  if (RESERVED_SCHEMAS.test(schema))
    throw new TenantryError('INVALID_IDENTIFIER', `${schema} is not a tenant schema name`, {
      status: 400,
      details: { what: 'schema' },
    });
  const client = owner instanceof pg.Pool ? await owner.connect() : owner;
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ app: string; support: string | null }>(
      `select (select value from tenantry.meta where key = 'app_role') as app,
              (select nullif(value, '') from tenantry.meta where key = 'support_role') as support`,
    );
    const readers = [rows[0]!.app, ...(rows[0]!.support ? [rows[0]!.support] : [])]
      .map((r) => quoteIdent(r, 'role'))
      .join(', ');
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`);
    await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${readers}`);
    await client.query(`SELECT set_config('search_path', $1, true)`, [`${s}, public`]);
    await client.query(ddl);
    if (tenant !== undefined) await client.query('SELECT tenantry.claim_tenant_schema($1, $2)', [schema, tenant]);
    else await client.query('SELECT tenantry.guard_tenant_schema($1)', [schema]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw schemaTakenError(error, schema);
  } finally {
    if (owner instanceof pg.Pool) (client as pg.PoolClient).release();
  }
}

/** TR007 (tenantry.claim_tenant_schema): the schema belongs to another tenant. Other errors unchanged. */
export function schemaTakenError(error: unknown, schema: string): unknown {
  if (sqlStateOf(error) !== SqlState.tenantSchemaTaken) return error;
  return new TenantryError('TENANT_SCHEMA_TAKEN', `Schema ${schema} belongs to another tenant`, {
    status: 409,
    details: { schema },
    cause: error,
  });
}

/** Options of {@link createTenantDatabase}: the install options every database of the deployment shares. */
export interface TenantDatabaseOptions extends InstallRunOptions {
  /** Superuser URL of the cluster (any database): creates the database. */
  adminUrl: string;
  /** The owner role's URL on that cluster (any database): runs `ddl` in the new one. */
  ownerUrl: string;
  database: string;
  /** The tenant tables, as in the shared database (registering each one). */
  ddl: string;
}

/**
 * Creates (idempotently) a database-tier tenant's database on a cluster: CREATE DATABASE, then
 * `tenantry install` with the deployment's roles and context secret (so the same signed context
 * is valid there), then `ddl` as the owner role.
 */
export async function createTenantDatabase(options: TenantDatabaseOptions): Promise<void> {
  const { adminUrl, ownerUrl, database, ddl, ...installOptions } = options;
  validIdentifier(database, 'database');
  const root = new pg.Client({ connectionString: adminUrl });
  await root.connect();
  try {
    const exists = await root.query('select from pg_database where datname = $1', [database]);
    // from template0: whatever was ever written into template1 (an extension, a table, rows) never
    // reaches a tenant's database; install below puts in what a tenant database needs
    if (exists.rowCount === 0)
      await root.query(`CREATE DATABASE ${quoteIdent(database, 'database')} TEMPLATE template0`);
  } finally {
    await root.end();
  }
  await install(withDatabase(adminUrl, database), installOptions);
  const owner = new pg.Client({ connectionString: withDatabase(ownerUrl, database) });
  await owner.connect();
  try {
    await owner.query('BEGIN');
    await owner.query(ddl);
    await owner.query('COMMIT');
  } catch (error) {
    await owner.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await owner.end();
  }
}

/** `url` with its database name replaced. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${validIdentifier(database, 'database')}`;
  return u.toString();
}
