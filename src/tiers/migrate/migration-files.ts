import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { MigrationError } from './migration-error.js';

/** Where a migration runs: once per database (`global/`), or once per tenant location (`tenant/`). */
export type MigrationScope = 'global' | 'tenant';

/** One migration file. */
export interface Migration {
  /** The number the file name starts with: unique across `global/` and `tenant/`, the apply order. */
  version: number;
  /** The file name, e.g. `002_notes.sql`. */
  name: string;
  scope: MigrationScope;
  sql: string;
  /** SHA-256 of the file as written: an applied migration whose file changes is refused. */
  checksum: string;
}

const FILE_NAME = /^(\d{3,9})_[a-z0-9_]+\.sql$/;
const SCOPES: readonly MigrationScope[] = ['global', 'tenant'];

/**
 * Reads a tenant-aware migrations directory:
 *
 * ```
 * migrations/
 *   global/001_functions.sql   once per database (the cluster's shared database, each tenant database)
 *   tenant/002_notes.sql       once per tenant location (the shared data schemas, each tenant schema, each tenant database)
 *   tenant/003_notes_title.sql
 * ```
 *
 * Versions are numbered across both folders and applied in that order. Anything else in the
 * directory (a stray `.sql` at the top, a misnamed file, a duplicate number) is an error.
 */
export async function loadMigrations(dir: string): Promise<Migration[]> {
  const top = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => {
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      `Cannot read the migrations directory ${dir}: ${(error as Error).message}`,
      { dir },
    );
  });
  const stray = top.find((e) => e.name.endsWith('.sql'));
  if (stray)
    throw new MigrationError(
      'MIGRATION_FILE_INVALID',
      `${stray.name}: put migrations in global/ (once per database) or tenant/ (once per tenant location)`,
      { file: stray.name },
    );
  const folders = SCOPES.filter((s) => top.some((e) => e.isDirectory() && e.name === s));
  if (folders.length === 0)
    throw new MigrationError('MIGRATION_FILE_INVALID', `${dir} has neither a global/ nor a tenant/ folder`, { dir });
  const migrations: Migration[] = [];
  for (const scope of folders) {
    for (const name of (await readdir(path.join(dir, scope))).sort()) {
      const match = FILE_NAME.exec(name);
      if (!match)
        throw new MigrationError('MIGRATION_FILE_INVALID', `${scope}/${name} is not named NNN_snake_case.sql`, {
          file: `${scope}/${name}`,
        });
      const sql = await readFile(path.join(dir, scope, name), 'utf8');
      migrations.push({
        version: Number(match[1]),
        name,
        scope,
        sql,
        checksum: createHash('sha256').update(sql).digest('hex'),
      });
    }
  }
  migrations.sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) {
      const [a, b] = [migrations[i - 1]!, migrations[i]!];
      throw new MigrationError(
        'MIGRATION_FILE_INVALID',
        `${a.scope}/${a.name} and ${b.scope}/${b.name} share version ${a.version}`,
        { version: a.version },
      );
    }
  }
  return migrations;
}
