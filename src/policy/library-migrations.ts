import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { quoteIdent } from './identifiers.js';

/**
 * The features whose SQL Tenantry installs, in the order their migrations apply (a feature may
 * use what an earlier one created: identity's tables reference core's tenant catalog). Each
 * owns a folder of numbered files `NNN_name.sql` next to its code. The folders are resolved from
 * this module's URL, so they are found from `src/` (under tsx or vitest) and from `dist/` (the
 * build copies them there: scripts/copy-migrations.mjs).
 */
export const LIBRARY_FEATURES: readonly { feature: string; folder: string }[] = Object.freeze([
  { feature: 'core', folder: './migrations/' },
  { feature: 'tiers', folder: '../tiers/migrations/' },
  { feature: 'migrate', folder: '../tiers/migrate/migrations/' },
  { feature: 'move', folder: '../tiers/move/migrations/' },
  // needs only core; before identity, whose failure the upgrade tests stage
  { feature: 'export', folder: '../lifecycle/export/migrations/' },
  // purge needs only core's catalog; before identity, like export
  { feature: 'purge', folder: '../lifecycle/purge/migrations/' },
  { feature: 'identity', folder: '../identity/migrations/' },
  { feature: 'onboard', folder: '../lifecycle/onboard/migrations/' },
  // the pools' per-tenant activity (data/tenant-activity-publisher.ts), read by `tenantry tenants top`
  { feature: 'activity', folder: '../data/migrations/' },
  { feature: 'jobs', folder: '../jobs/migrations/' },
  // usage ledgers and the rows-written trigger: needs core's registry of tables
  { feature: 'metering', folder: '../metering/migrations/' },
  { feature: 'limits', folder: '../limits/migrations/' },
  // per-tenant settings and feature flags: reference core's tenants only
  { feature: 'settings', folder: '../settings/migrations/' },
  // per-tenant brand (tenantry/branding): references core's tenants only
  { feature: 'branding', folder: '../branding/migrations/' },
]);

/** One migration of the library's own schema. */
export interface LibraryMigration {
  feature: string;
  version: number;
  /** The file name without number and extension (`001_core.sql` → `core`). */
  name: string;
  /** The SQL with its role placeholders (`:TENANTRY_APP_ROLE`, `:TENANTRY_OWNER_ROLE`). */
  template: string;
  /** SHA-256 (hex) of the template: recorded when applied, so doctor sees a file edited after release. */
  checksum: string;
}

/** Roles a migration's placeholders stand for (validated and quoted when rendered). */
export interface MigrationRoles {
  appRole: string;
  ownerRole: string;
}

const FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

let cache: LibraryMigration[] | undefined;

/** Every migration of the library, features in {@link LIBRARY_FEATURES} order, each feature's by version. */
export function libraryMigrations(): readonly LibraryMigration[] {
  if (cache) return cache;
  const all: LibraryMigration[] = [];
  for (const { feature, folder } of LIBRARY_FEATURES) {
    const dir = fileURLToPath(new URL(folder, import.meta.url));
    let files: string[];
    try {
      files = readdirSync(dir)
        .filter((f) => f.endsWith('.sql'))
        .sort();
    } catch (error) {
      throw new Error(
        `tenantry: the ${feature} migrations folder ${dir} cannot be read: a build must copy src/**/migrations (npm run build does)`,
        { cause: error },
      );
    }
    let expected = 1;
    for (const file of files) {
      const match = FILE.exec(file);
      if (!match) throw new Error(`tenantry: ${feature} migration ${file} is not named NNN_name.sql`);
      const version = Number(match[1]);
      if (version !== expected) throw new Error(`tenantry: ${feature} migration ${file}: expected version ${expected}`);
      expected++;
      const template = readFileSync(new URL(`${folder}${file}`, import.meta.url), 'utf8');
      const checksum = createHash('sha256').update(template).digest('hex');
      all.push({ feature, version, name: match[2]!, template, checksum });
    }
    if (files.length === 0) throw new Error(`tenantry: no migrations found for ${feature} in ${dir}`);
  }
  cache = all;
  return all;
}

/** `feature/NNN_name`: how reports and doctor name a migration. */
export function migrationLabel(m: Pick<LibraryMigration, 'feature' | 'version' | 'name'>): string {
  return `${m.feature}/${String(m.version).padStart(3, '0')}_${m.name}`;
}

/**
 * The migration's SQL for these roles. The placeholders are the only thing substituted, each
 * with a validated, double-quoted identifier (as graphile-worker renders its schema name), so a
 * migration stays reviewed SQL whatever the deployment names its roles.
 */
export function renderMigration(m: LibraryMigration, roles: MigrationRoles): string {
  const app = quoteIdent(roles.appRole, 'app role');
  const owner = quoteIdent(roles.ownerRole, 'owner role');
  return m.template.replace(/:TENANTRY_(APP|OWNER)_ROLE\b/g, (_, which: string) => (which === 'APP' ? app : owner));
}

/** A row of `tenantry.library_migrations`. */
export interface AppliedMigration {
  feature: string;
  version: number;
  checksum: string;
}

/** What `tenantry.library_migrations` records in this database (none when the table is missing). */
export async function appliedLibraryMigrations(db: {
  query<R extends object>(sql: string): Promise<{ rows: R[] }>;
}): Promise<AppliedMigration[]> {
  const { rows } = await db.query<{ present: boolean }>(
    `select to_regclass('tenantry.library_migrations') is not null as present`,
  );
  if (!rows[0]?.present) return [];
  return (
    await db.query<AppliedMigration>(
      'select feature, version, checksum from tenantry.library_migrations order by feature, version',
    )
  ).rows;
}

/** The library's migrations not applied in a database that records `applied`. */
export function pendingOf(applied: readonly AppliedMigration[]): LibraryMigration[] {
  const done = new Set(applied.map((a) => `${a.feature}/${a.version}`));
  return libraryMigrations().filter((m) => !done.has(`${m.feature}/${m.version}`));
}

/** Applied migrations whose recorded checksum differs from this library's file (edited after release). */
export function changedOf(applied: readonly AppliedMigration[]): LibraryMigration[] {
  const byKey = new Map(applied.map((a) => [`${a.feature}/${a.version}`, a.checksum]));
  return libraryMigrations().filter((m) => {
    const recorded = byKey.get(`${m.feature}/${m.version}`);
    return recorded !== undefined && recorded !== m.checksum;
  });
}

/** Applied migrations this library version does not know (`feature/NNN`): a newer version installed the database. */
export function unknownOf(applied: readonly AppliedMigration[]): string[] {
  const known = new Set(libraryMigrations().map((m) => `${m.feature}/${m.version}`));
  return applied
    .filter((a) => !known.has(`${a.feature}/${a.version}`))
    .map((a) => `${a.feature}/${String(a.version).padStart(3, '0')}`);
}
