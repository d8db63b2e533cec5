import type pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent } from '../policy/identifiers.js';
import { grantsStepSql, rolesStepSql, type ResolvedInstallOptions } from '../policy/install-sql.js';
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

/**
 * What `tenantry install --citus` runs, as text (`install --citus --dry-run`): each statement as
 * it is sent, on its own (never a multi-statement script), under the transaction of its step;
 * the roles and schemas first, each committed at once; the migrations given (`migrations`, the
 * SQL of each pending one); the grants step in its Citus form; then the Citus step. `o` has its
 * passwords masked already. Refused, as the install is, where the citus extension is missing.
 */
export async function planCitusInstall(
  client: Pick<pg.Client, 'query'>,
  o: ResolvedInstallOptions,
  migrations: string[],
): Promise<string> {
  const version = await citusVersion(client);
  if (version === undefined)
    throw new ConfigurationError(
      'tenantry install --citus: the citus extension is not installed in this database (CREATE EXTENSION citus on the coordinator first)',
    );
  const each = async (sql: string) =>
    (await splitStatements(sql)).map((statement) => (statement.endsWith(';') ? statement : `${statement};`));
  const step = async (title: string, sql: string) => [`-- ${title}`, 'BEGIN;', ...(await each(sql)), 'COMMIT;'];
  const roles = [o.ownerRole, o.appRole, o.routerRole, ...(o.supportRole === undefined ? [] : [o.supportRole])];
  const missing: string[] = [];
  for (const role of roles)
    if ((await client.query('select 1 from pg_catalog.pg_roles where rolname = $1', [role])).rowCount === 0)
      missing.push(role);
  const owner = quoteIdent(o.ownerRole);
  const lines = [
    `-- tenantry install --citus (citus ${version}): every statement below is sent on its own (Citus forwards`,
    '-- some commands as it received them: a multi-statement script fails there); passwords are set only',
    '-- where a role has none yet (masked here); the context secret is never printed',
    '-- 1. roles and schemas first, each committed at once (Citus propagates them to the workers)',
    ...missing.map((role) => `CREATE ROLE ${quoteIdent(role)} NOLOGIN;`),
    ...['tenantry', 'tenantry_private'].map(
      (schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)} AUTHORIZATION ${owner};`,
    ),
    ...o.dataSchemas.map((schema) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)};`),
    ...(await step('2. the roles step', rolesStepSql(o))),
  ];
  if (migrations.length === 0) lines.push('-- 3. no pending library migration');
  for (const [i, m] of migrations.entries())
    lines.push(...(await step(`3. pending library migration ${i + 1} of ${migrations.length}`, m)));
  lines.push(
    ...(await step(
      '4. the grants step (Citus form: distributed tables left to the Citus step)',
      grantsStepSql(o, { citus: true }),
    )),
  );
  lines.push(
    "-- then, in signed mode on a first install: the context secret's HMAC pads are stored in tenantry_private.context_key (not printed)",
  );
  const parts = citusPrepareSql(o).split(CITUS_STEP_COMMIT);
  for (const [i, part] of parts.entries())
    lines.push(...(await step(`5. the Citus step (tenantry citus prepare), part ${i + 1} of ${parts.length}`, part)));
  return `${lines.join('\n')}\n`;
}
