import pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { hmacPads } from '../data/context-signer.js';
import {
  INSTALL_LOCK_SQL,
  grantsStepSql,
  migrationStepSql,
  resolveInstallOptions,
  rolesStepSql,
  type InstallOptions,
  type ResolvedInstallOptions,
} from './install-sql.js';
import { appliedLibraryMigrations, migrationLabel, pendingOf, unknownOf } from './library-migrations.js';
import { NEWER_SCHEMA_SQLSTATE, NewerSchemaError } from './newer-schema-error.js';
import { InstallSecretsMismatchError } from './install-secrets-mismatch-error.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { passwordMatchesVerifier } from './password-verifier.js';

/** Options of {@link install}: the install options plus the signed-mode secret. */
export interface InstallRunOptions extends InstallOptions {
  /**
   * Secret of signed mode (≥ 32 characters), stored as HMAC pads in the private schema, never
   * printed. Stored on the first install only: a database that has a key keeps it (a different
   * secret is reported, not applied: change it with `tenantry rotate context-secret`).
   */
  contextSecret?: string;
  /**
   * A Citus coordinator (docs/citus.md): roles and schemas are created and committed first (so
   * Citus has them on every worker before anything depends on them), every step is sent one
   * statement at a time (Citus forwards some commands' text as it is), and the Citus step runs
   * last (reference tables, policies Citus accepts, worker settings). Default false.
   */
  citus?: boolean;
  /**
   * Refuse ({@link InstallSecretsMismatchError}), before changing anything, when a password given
   * for a role that has one is not that role's (as far as the stored verifier tells) or the
   * context secret given is not the stored key. A server that starts with `install` wants this:
   * otherwise install keeps the database's and reports the mismatch after its steps ran. Default
   * false.
   */
  secretsMustMatch?: boolean;
}

/** Runs a step's SQL on a connection: as one script, or statement by statement (Citus). */
export type StepRunner = (client: pg.Client, sql: string) => Promise<void>;

const runScript: StepRunner = async (client, sql) => {
  await client.query(sql);
};

/** What one {@link install} did. */
export interface InstallReport {
  /** The library migrations applied by this install (`feature/NNN_name`), in order; empty when the database was current. */
  applied: string[];
  /** True when the database held an install of before the versioned schema (no `tenantry.library_migrations`), now brought to it. */
  baselined: boolean;
  /**
   * Per login role given a password: `set` (the role had none, e.g. just created) or `kept` (its
   * existing password was left alone). For a kept one, `matches` says whether the given password
   * is the role's (read from the stored SCRAM verifier; absent when it cannot be told: install
   * not run as a superuser, or a format it does not check): `false` means a client using the
   * given password is refused (28P01).
   */
  passwords: { role: string; action: 'set' | 'kept'; matches?: boolean }[];
  /**
   * `set`: stored (none was there); `unchanged`: the stored key is this secret's; `kept`: another
   * key is stored and was kept (the given secret is NOT the one PostgreSQL verifies); `none`: no
   * secret given.
   */
  contextSecret: 'set' | 'unchanged' | 'kept' | 'none';
}

/**
 * Runs `tenantry install` against the database `adminUrl` points to (connect as a superuser,
 * or as a role allowed to create roles, schemas and event triggers): the roles step, then each
 * pending library migration in its own transaction, then the grants step (see docs/upgrades.md).
 * Idempotent, and safe to run concurrently (an advisory lock serializes installs of a database).
 * Never changes what a running application depends on: existing passwords and the context key
 * are kept ({@link InstallReport}).
 */
export async function install(adminUrl: string, options: InstallRunOptions = {}): Promise<InstallReport> {
  const resolved = resolveInstallOptions(options);
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'tenantry install' });
  await client.connect();
  try {
    const { rows } = await client.query<{ rolsuper: boolean }>(
      'select rolsuper from pg_roles where rolname = current_user',
    );
    const superuser = rows[0]?.rolsuper === true;
    if (resolved.eventTrigger && !superuser) {
      throw new ConfigurationError(
        'The deny-by-default event trigger needs a superuser: run install as one, or pass eventTrigger: false (--no-event-trigger)',
      );
    }
    // a database a newer version installed: this version would downgrade what it re-creates
    const unknown = unknownOf(await appliedLibraryMigrations(client));
    if (unknown.length > 0) throw new NewerSchemaError(unknown);
    const storedKey = await readContextKey(client);
    if (resolved.contextMode === 'signed' && !options.contextSecret && !storedKey)
      throw new ConfigurationError(
        // (there is no --context-secret flag: a secret in argv would show in ps)
        'Signed context mode needs a context secret on first install (the contextSecret option; the CLI reads TENANTRY_CONTEXT_SECRET, else <dir>/config.json)',
      );
    const { options: withPasswords, passwords } = await passwordsToSet(client, resolved, superuser);
    if (options.secretsMustMatch) {
      const mismatched = [
        ...passwords.filter((p) => p.matches === false).map((p) => `the password of ${p.role}`),
        ...(options.contextSecret !== undefined && storedKey && !sameKey(storedKey, checkedPads(options.contextSecret))
          ? ['the context secret']
          : []),
      ];
      if (mismatched.length > 0) throw new InstallSecretsMismatchError(mismatched);
    }
    const old = await client.query<{ meta: boolean; versioned: boolean }>(
      `select to_regclass('tenantry.meta') is not null as meta, to_regclass('tenantry.library_migrations') is not null as versioned`,
    );
    const baselined = old.rows[0]!.meta && !old.rows[0]!.versioned;

    let applied: string[];
    const citus = options.citus ? await import('../citus/citus-install.js') : undefined;
    const run = citus ? citus.runEachStatement : runScript;
    try {
      if (citus) await citus.createRolesAndSchemasFirst(client, withPasswords);
      await inTransaction(client, rolesStepSql(withPasswords), run);
      applied = await applyPendingMigrations(client, resolved, run);
      await inTransaction(client, grantsStepSql(resolved, { citus: citus !== undefined }), run);
    } catch (error) {
      // a newer install committed between the check above and a step's lock
      if (sqlStateOf(error) === NEWER_SCHEMA_SQLSTATE)
        throw new NewerSchemaError(unknownOf(await appliedLibraryMigrations(client)), error);
      throw error;
    }

    let contextSecret: InstallReport['contextSecret'] = 'none';
    if (options.contextSecret !== undefined) {
      const { ipad, opad } = checkedPads(options.contextSecret);
      const current = await readContextKey(client);
      // a concurrent first install may store its key between the read and the insert: then that one is kept
      const stored = current
        ? 0
        : (
            await client.query(
              `insert into tenantry_private.context_key (id, ipad, opad) values (true, $1, $2) on conflict (id) do nothing`,
              [ipad, opad],
            )
          ).rowCount;
      const key = stored ? undefined : (current ?? (await readContextKey(client)));
      contextSecret = !key ? 'set' : sameKey(key, { ipad, opad }) ? 'unchanged' : 'kept';
    }
    // after the key: a reference table is made from the table with its row
    if (citus) await citus.prepareCitus(client, resolved);
    return { applied, baselined, passwords, contextSecret };
  } finally {
    await client.end();
  }
}

/**
 * What {@link install} would run against this database, without running it (`tenantry install
 * --dry-run`): the roles step, the pending migrations (`pending`, `feature/NNN_name`) and the
 * grants step. Passwords are masked; the context secret never appears. With `citus: true`, what
 * `install --citus` runs: the roles and schemas first, every step one statement at a time, the
 * grants step in its Citus form, then the Citus step.
 */
export async function planInstall(
  adminUrl: string,
  options: InstallOptions & { citus?: boolean } = {},
): Promise<{ pending: string[]; sql: string }> {
  const masked = resolveInstallOptions({
    ...options,
    ...(options.appPassword !== undefined ? { appPassword: '********' } : {}),
    ...(options.ownerPassword !== undefined ? { ownerPassword: '********' } : {}),
    ...(options.supportPassword !== undefined ? { supportPassword: '********' } : {}),
    ...(options.routerPassword !== undefined ? { routerPassword: '********' } : {}),
  });
  const client = new pg.Client({ connectionString: adminUrl, application_name: 'tenantry install --dry-run' });
  await client.connect();
  try {
    const pending = pendingOf(await appliedLibraryMigrations(client));
    if (options.citus) {
      const { planCitusInstall } = await import('../citus/citus-install.js');
      const sql = await planCitusInstall(
        client,
        masked,
        pending.map((m) => `${INSTALL_LOCK_SQL}\n${migrationStepSql(m, masked)}`),
      );
      return { pending: pending.map(migrationLabel), sql };
    }
    const sql = [
      '-- passwords are set only where a role has none yet (masked here); the context secret is never printed',
      'BEGIN;',
      rolesStepSql(masked),
      'COMMIT;',
      ...(pending.length === 0
        ? ['-- no pending library migration']
        : pending.map(
            (m) => `BEGIN;
${INSTALL_LOCK_SQL}
${migrationStepSql(m, masked)}
COMMIT;`,
          )),
      'BEGIN;',
      grantsStepSql(masked),
      'COMMIT;',
      '',
    ].join('\n');
    return { pending: pending.map(migrationLabel), sql };
  } finally {
    await client.end();
  }
}

/**
 * Applies the library migrations this database has not applied, each in its own transaction
 * that first takes the install lock and checks again (a concurrent install may have applied it
 * meanwhile), so each is applied once, in order, and a failed one leaves nothing half-applied:
 * the next install starts again from it.
 */
export async function applyPendingMigrations(
  client: pg.Client,
  roles: Pick<ResolvedInstallOptions, 'appRole' | 'ownerRole'>,
  run: StepRunner = runScript,
): Promise<string[]> {
  const applied: string[] = [];
  for (const m of pendingOf(await appliedLibraryMigrations(client))) {
    await client.query('BEGIN');
    try {
      await client.query(INSTALL_LOCK_SQL);
      const done = await client.query('select 1 from tenantry.library_migrations where feature = $1 and version = $2', [
        m.feature,
        m.version,
      ]);
      if (done.rowCount === 0) {
        await run(client, migrationStepSql(m, roles));
        applied.push(migrationLabel(m));
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }
  return applied;
}

async function inTransaction(client: pg.Client, sql: string, run: StepRunner = runScript): Promise<void> {
  await client.query('BEGIN');
  try {
    await run(client, sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/**
 * Keeps only the passwords of roles that have none yet (missing, or created without one): an
 * existing password is never changed by install. Without the superuser's view of pg_authid, a
 * role that exists is assumed to have one.
 */
async function passwordsToSet(
  client: pg.Client,
  o: ResolvedInstallOptions,
  superuser: boolean,
): Promise<{ options: ResolvedInstallOptions; passwords: InstallReport['passwords'] }> {
  const given = (
    [
      ['appPassword', o.appRole],
      ['ownerPassword', o.ownerRole],
      ['supportPassword', o.supportRole],
      ['routerPassword', o.routerRole],
    ] as const
  ).filter(([key, role]) => role !== undefined && o[key] !== undefined) as [
    'appPassword' | 'ownerPassword' | 'supportPassword' | 'routerPassword',
    string,
  ][];
  if (given.length === 0) return { options: o, passwords: [] };
  const roles = given.map(([, role]) => role);
  // the verifier is read to compare with the given password here, never printed or kept
  const { rows } = superuser
    ? await client.query<{ rolname: string; has: boolean; verifier: string | null }>(
        'select rolname, rolpassword is not null as has, rolpassword as verifier from pg_authid where rolname = any($1)',
        [roles],
      )
    : await client.query<{ rolname: string; has: boolean; verifier: string | null }>(
        'select rolname, true as has, null as verifier from pg_roles where rolname = any($1)',
        [roles],
      );
  const existing = new Map(rows.filter((r) => r.has).map((r) => [r.rolname, r.verifier]));
  const options = { ...o };
  const passwords: InstallReport['passwords'] = [];
  for (const [key, role] of given) {
    if (existing.has(role)) {
      const verifier = existing.get(role);
      const matches = verifier ? passwordMatchesVerifier(verifier, role, o[key]!) : undefined;
      options[key] = undefined;
      passwords.push({ role, action: 'kept', ...(matches === undefined ? {} : { matches }) });
    } else passwords.push({ role, action: 'set' });
  }
  return { options, passwords };
}

/** The stored signed-mode key's pads, or undefined when none is stored (or Tenantry is not installed). */
export async function readContextKey(
  client: Pick<pg.Client, 'query'>,
): Promise<{ ipad: Buffer; opad: Buffer } | undefined> {
  const present = await client.query<{ present: boolean }>(
    `select to_regclass('tenantry_private.context_key') is not null as present`,
  );
  if (!present.rows[0]?.present) return undefined;
  const { rows } = await client.query<{ ipad: Buffer; opad: Buffer }>(
    'select ipad, opad from tenantry_private.context_key',
  );
  return rows[0];
}

function sameKey(a: { ipad: Buffer; opad: Buffer }, b: { ipad: Buffer; opad: Buffer }): boolean {
  return a.ipad.equals(b.ipad) && a.opad.equals(b.opad);
}

/** The HMAC pads of a secret, after checking its length. */
export function checkedPads(secret: string): { ipad: Buffer; opad: Buffer } {
  if (typeof secret !== 'string' || secret.length < 32)
    throw new ConfigurationError('The tenant context secret must be at least 32 characters');
  return hmacPads(secret);
}

/**
 * Replaces the signed-mode key at once, with no overlap: values signed with the old secret stop
 * verifying immediately. For a running application use `tenantry rotate context-secret`
 * ({@link rotateContextSecret}), which keeps the old key valid for a while.
 */
export async function setContextSecret(admin: Pick<pg.Client, 'query'>, secret: string): Promise<void> {
  const { ipad, opad } = checkedPads(secret);
  await admin.query(
    `insert into tenantry_private.context_key (id, ipad, opad) values (true, $1, $2)
     on conflict (id) do update set ipad = excluded.ipad, opad = excluded.opad, created_at = excluded.created_at,
       previous_ipad = null, previous_opad = null, previous_until = null`,
    [ipad, opad],
  );
}
