import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { recordReviewedFunctions } from 'tenantry';
import { REVIEWED_FUNCTIONS } from './reviewed-functions.js';

/** The reference server's migrations, `NNN_name.sql`, applied in name order. */
export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

const FILE_NAME = /^\d{3}_[a-z0-9_]+\.sql$/;
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;
// psql's syntax for a quoted identifier variable: :"name" (not preceded by another colon, so `x::"type"` casts stay)
const VARIABLE = /(?<!:):"([a-z_]+)"/g;
const LOCK_KEY = 'tenantry.reference-server.migrate';

/** Options of {@link migrate}. */
export interface MigrateOptions {
  /** The application role (per database): migrations grant to it as `:"app_role"`. */
  appRole: string;
  /** Folder of `NNN_name.sql` files; default the server's own. */
  dir?: string;
  /** Told the name of each migration as it is applied. */
  onApply?: (name: string) => void;
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

/** Migration files of `dir`, in order, with their checksums (over the file as written). */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql')).sort();
  const bad = names.find((n) => !FILE_NAME.test(n));
  if (bad) throw new Error(`Migration file ${bad} is not named NNN_snake_case.sql`);
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(path.join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/** Replaces `:"app_role"` with the quoted role name; any other variable is an error. */
export function substituteVariables(sql: string, variables: Record<string, string>): string {
  return sql.replace(VARIABLE, (_, name: string) => {
    const value = variables[name];
    if (value === undefined) throw new Error(`Unknown migration variable :"${name}"`);
    return `"${value}"`;
  });
}

/**
 * Applies the migrations not yet applied, in order, each once, tracked in `public.app_migrations`.
 * Runs in ONE transaction under an advisory lock: concurrent callers wait, then find nothing to
 * do, and a failing migration leaves nothing half-applied. Connect as the OWNER role (so the
 * owner owns the tables); the app role and owner role must be the ones Tenantry was installed with.
 * An applied migration whose file has since changed is refused.
 *
 * @returns the names of the migrations applied by this call.
 */
export async function migrate(owner: string | pg.Pool, options: MigrateOptions): Promise<string[]> {
  if (!ROLE_NAME.test(options.appRole)) throw new Error('appRole must be a plain lower-case role name');
  const migrations = await loadMigrations(options.dir);
  const own = typeof owner === 'string';
  const client = own ? new pg.Client({ connectionString: owner }) : await owner.connect();
  if (own) await client.connect();
  const applied: string[] = [];
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [LOCK_KEY]);
      await checkRoles(client, options.appRole);
      await client.query(`
        CREATE TABLE IF NOT EXISTS public.app_migrations (
          name text PRIMARY KEY,
          checksum text NOT NULL,
          applied_at timestamptz NOT NULL DEFAULT now()
        )`);
      const { rows } = await client.query<{ name: string; checksum: string }>(
        'SELECT name, checksum FROM public.app_migrations',
      );
      const done = new Map(rows.map((r) => [r.name, r.checksum]));
      for (const migration of migrations) {
        const checksum = done.get(migration.name);
        if (checksum !== undefined) {
          if (checksum !== migration.checksum)
            throw new Error(`Migration ${migration.name} changed after it was applied: add a new migration instead`);
          continue;
        }
        await client.query(substituteVariables(migration.sql, { app_role: options.appRole }));
        await client.query('INSERT INTO public.app_migrations (name, checksum) VALUES ($1, $2)', [
          migration.name,
          migration.checksum,
        ]);
        applied.push(migration.name);
        options.onApply?.(migration.name);
      }
      // the SECURITY DEFINER functions above, as reviewed (tenantry doctor: DEFINER_NOT_REVIEWED)
      await recordReviewedFunctions(client, REVIEWED_FUNCTIONS);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    return applied;
  } finally {
    if (own) await client.end();
    else (client as pg.PoolClient).release();
  }
}

// Tables created by another role would not be the owner's, and grants to a wrong app role
// would open nothing (or the wrong thing): compare with what `tenantry install` recorded.
async function checkRoles(client: pg.ClientBase, appRole: string): Promise<void> {
  const { rows } = await client.query<{ me: string; owner_role: string | null; app_role: string | null }>(
    `SELECT current_user AS me,
            (SELECT value FROM tenantry.meta WHERE key = 'owner_role') AS owner_role,
            (SELECT value FROM tenantry.meta WHERE key = 'app_role') AS app_role`,
  );
  const row = rows[0]!;
  if (row.me !== row.owner_role)
    throw new Error(`Run migrations as the owner role ${row.owner_role ?? '?'}, not ${row.me}`);
  if (appRole !== row.app_role)
    throw new Error(`appRole ${appRole} is not the app role Tenantry was installed with (${row.app_role ?? '?'})`);
}

/** Creates the extensions the migrations need. Run as a superuser (or a role allowed to). */
export async function ensureExtensions(adminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    // pgcrypto's crypt() is called as public.crypt by app.sign_in
    const { rows } = await client.query<{ schema: string }>(
      `SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'pgcrypto'`,
    );
    if (!rows[0]) await client.query('CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public');
    else if (rows[0].schema !== 'public')
      throw new Error(`pgcrypto is installed in schema ${rows[0].schema}; the migrations expect it in public`);
  } finally {
    await client.end();
  }
}
