import { libraryMigrations, migrationLabel } from '../../src/policy/library-migrations.js';
import type pg from 'pg';

/** Anything with a superuser pool on one database (a TestDatabase, a ClusterDatabase). */
interface WithAdmin {
  admin: pg.Pool;
}

/** The library migrations `tenantry.library_migrations` records in that database (`feature/NNN_name`), in the library's order. */
export async function appliedLabels(db: WithAdmin): Promise<string[]> {
  const { rows } = await db.admin.query<{ present: boolean }>(
    `select to_regclass('tenantry.library_migrations') is not null as present`,
  );
  if (!rows[0]!.present) return [];
  const applied = new Set(
    (
      await db.admin.query<{ label: string }>(
        `select feature || '/' || lpad(version::text, 3, '0') || '_' || name as label from tenantry.library_migrations`,
      )
    ).rows.map((r) => r.label),
  );
  return libraryMigrations()
    .map(migrationLabel)
    .filter((l) => applied.has(l));
}

/** Every library migration of this version, labelled. */
export const ALL_MIGRATIONS = libraryMigrations().map(migrationLabel);

/** Whether a function with this signature exists in that database. */
export async function hasFunction(db: WithAdmin, signature: string): Promise<boolean> {
  const { rows } = await db.admin.query<{ present: boolean }>('select to_regprocedure($1) is not null as present', [
    signature,
  ]);
  return rows[0]!.present;
}
