import type pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent } from '../policy/identifiers.js';
import type { ResolvedInstallOptions } from '../policy/install-sql.js';
import { CITUS_STEP_COMMIT, citusPrepareSql } from './citus-prepare-sql.js';
import { splitStatements } from './split-statements.js';

/**
 * Runs a step's SQL one statement at a time on the same connection (inside the step's
 * transaction). Citus forwards the text of some commands to its workers as it received it: one
 * multi-statement script would be forwarded whole ("cannot insert multiple commands into a
 * prepared statement").
 */
export async function runEachStatement(client: pg.Client, sql: string): Promise<void> {
  for (const statement of await splitStatements(sql)) await client.query(statement);
}

/** The Citus extension's version on this database, or undefined when Citus is not installed in it. */
export async function citusVersion(client: Pick<pg.Client, 'query'>): Promise<string | undefined> {
  const { rows } = await client.query<{ extversion: string }>(
    `select extversion from pg_catalog.pg_extension where extname = 'citus'`,
  );
  return rows[0]?.extversion;
}

/**
 * Creates the roles and Tenantry's schemas first, each in a transaction of its own that commits
 * at once. Citus propagates CREATE ROLE and CREATE SCHEMA to the workers; what the install does
 * next (functions as the owner role, in the schemas) is propagated over other connections, which
 * must see them committed: in the same transaction they do not exist there yet.
 */
export async function createRolesAndSchemasFirst(client: pg.Client, o: ResolvedInstallOptions): Promise<void> {
  if ((await citusVersion(client)) === undefined)
    throw new ConfigurationError(
      'tenantry install --citus: the citus extension is not installed in this database (CREATE EXTENSION citus on the coordinator first)',
    );
  const roles = [o.ownerRole, o.appRole, o.routerRole, ...(o.supportRole === undefined ? [] : [o.supportRole])];
  for (const role of roles) {
    const { rowCount } = await client.query('select 1 from pg_catalog.pg_roles where rolname = $1', [role]);
    // attributes and passwords come from the roles step that follows (ALTER ROLE, propagated too)
    if (rowCount === 0) await client.query(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`);
  }
  const owner = quoteIdent(o.ownerRole);
  for (const schema of ['tenantry', 'tenantry_private'])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)} AUTHORIZATION ${owner}`);
  for (const schema of o.dataSchemas) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
}

/**
 * The Citus step of `tenantry install --citus` (and `tenantry citus prepare`): reference tables
 * for what the context check reads on the workers, the context functions and policies in forms
 * Citus accepts, the app role's `citus.propagate_set_commands`, a deny-by-default trigger that
 * leaves Citus's own shards alone. Idempotent; run after every install (an install re-creates
 * the context functions).
 */
export async function prepareCitus(
  client: pg.Client,
  o: Pick<ResolvedInstallOptions, 'appRole' | 'ownerRole' | 'contextMode' | 'eventTrigger'>,
): Promise<void> {
  if ((await citusVersion(client)) === undefined)
    throw new ConfigurationError('tenantry citus prepare: the citus extension is not installed in this database');
  for (const part of citusPrepareSql(o).split(CITUS_STEP_COMMIT)) {
    await client.query('BEGIN');
    try {
      for (const statement of await splitStatements(part)) await client.query(statement);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
}
