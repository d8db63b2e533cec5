import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { plugins } from '../plugins/registry.js';
import {
  createTenantDatabase,
  createTenantSchema,
  loadMigrations,
  migrateEverywhere,
  migrateLocation,
  Placements,
  TenantMover,
  type InstallRunOptions,
  type Migration,
  type MigrationReport,
  type MoveProgress,
  type MoveRecord,
  type PlacementTarget,
} from 'tenantry';

/** The reference server's tenant data migrations (`global/`, `tenant/`), applied wherever a tenant lives. */
export const DATA_MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'data-migrations');

let loaded: Promise<Migration[]> | undefined;

/**
 * The tenant data's migrations: app/data-migrations with the plugins' (app/plugins: versions
 * 1000 and up), so plugin tables exist wherever tenants live. Every path that migrates tenant
 * data uses this list: a location that applied a plugin migration would refuse the directory
 * alone (MIGRATION_UNKNOWN). From the command line: `tenantry migrate --migrations
 * app/data-migrations --plugins app/plugins/registry.ts`.
 */
export function dataMigrations(): Promise<Migration[]> {
  loaded ??= loadMigrations(DATA_MIGRATIONS_DIR).then((own) => plugins.migrations(own));
  return loaded;
}

/**
 * The home database's shared tables were made by app/migrations (002 recordings, 004 events):
 * the tables of data migration 1, recorded as applied there (a baseline) instead of being
 * created twice. The home's recordings keep their foreign key to the memberships (in the same
 * database); elsewhere there is none. Every later data migration runs at home like anywhere.
 */
const HOME_BASELINE = 1;

/**
 * Brings the home database's shared tables to the latest data migration (the baseline first).
 * `TenantTiers.migrateData` does it with every other location; a single-database deployment (and
 * the tests' fixture) can call this alone. `ownerUrl`: the home database as the owner role.
 */
export async function migrateHomeData(ownerUrl: string): Promise<void> {
  await migrateLocation({
    clusters: { home: ownerUrl },
    cluster: 'home',
    migrations: await dataMigrations(),
    baselineThrough: HOME_BASELINE,
  });
}

/** One PostgreSQL server ("cluster") of the deployment: its shared database's URLs. */
export interface ClusterUrls {
  /** As the owner role: migrations, moves. */
  ownerUrl: string;
  /** As the app role: the request path (RoutedTenantPool). */
  appUrl: string;
  /** As a superuser: creating tenant databases (optional: without it, no database tier there). */
  adminUrl?: string;
}

/** Options of {@link TenantTiers}. */
export interface TenantTiersOptions {
  /** Every cluster, `home` included. */
  clusters: Record<string, ClusterUrls>;
  /** The deployment's roles, passwords and context secret: a new tenant database is installed with them. */
  install: InstallRunOptions;
  /** Told each step of a move. */
  onProgress?: (progress: MoveProgress) => void;
}

/**
 * The reference server's side of isolation tiers: keeps its tenant data (recordings, events)
 * migrated in every location the catalog knows, prepares a new location (a schema or a
 * database, at the latest data migration) and moves tenants there online. Identity stays home:
 * `members` is pinned (app/migrations/006_tiers.sql), so a move leaves the memberships where
 * sign-in and the request path read them.
 */
export class TenantTiers {
  readonly placements: Placements;
  readonly #options: TenantTiersOptions;
  readonly #catalog: pg.Pool;
  readonly #mover: TenantMover;

  constructor(options: TenantTiersOptions) {
    if (!options.clusters.home) throw new Error('TenantTiers needs the home cluster');
    this.#options = options;
    this.#catalog = new pg.Pool({ connectionString: options.clusters.home.ownerUrl, max: 3 });
    this.#catalog.on('error', () => undefined);
    this.placements = new Placements({ catalog: this.#catalog, owners: this.#owners() });
    this.#mover = new TenantMover({
      placements: this.placements,
      catalog: this.#catalog,
      onProgress: options.onProgress,
    });
  }

  #owners(): Record<string, string> {
    return Object.fromEntries(Object.entries(this.#options.clusters).map(([name, c]) => [name, c.ownerUrl]));
  }

  /**
   * Registers every configured cluster in the catalog (idempotent), records the home baseline,
   * then brings every location the catalog knows to the latest data migration.
   */
  async migrateData(): Promise<MigrationReport> {
    for (const name of Object.keys(this.#options.clusters)) if (name !== 'home') await this.placements.addCluster(name);
    const owners = this.#owners();
    await migrateHomeData(owners.home!);
    const report = await migrateEverywhere({
      catalog: this.#catalog,
      clusters: owners,
      migrations: await dataMigrations(),
    });
    if (!report.ok) {
      const failed = report.results
        .filter((r) => r.failure)
        .map((r) => `${r.target.key}: ${r.failure!.migration ?? ''} ${r.failure!.message}`);
      throw new Error(`Tenant data migrations failed: ${failed.join('; ')}`);
    }
    return report;
  }

  /**
   * Makes `target` ready to receive a tenant: creates its schema (schema tier) or database
   * (database tier, installed with the deployment's roles) and applies the data migrations.
   * Idempotent. The shared tier of a cluster needs nothing: `migrateData` keeps it current.
   */
  async prepare(target: PlacementTarget, tenantId?: string): Promise<void> {
    const cluster = this.#options.clusters[target.cluster];
    if (!cluster) throw new Error(`Unknown cluster ${target.cluster}`);
    const owners = this.#owners();
    if (target.tier === 'schema') {
      if (!target.schema) throw new Error('A schema-tier placement needs a schema');
      // the schema alone (USAGE for the app role); its tables come from the data migrations
      await createTenantSchema(
        this.placements.ownerPool(target),
        target.schema,
        'select',
        tenantId === undefined ? {} : { tenant: tenantId },
      );
      await migrateLocation({
        clusters: owners,
        cluster: target.cluster,
        database: target.database ?? null,
        schema: target.schema,
        migrations: await dataMigrations(),
      });
    } else if (target.tier === 'database') {
      if (!target.database) throw new Error('A database-tier placement needs a database');
      if (!cluster.adminUrl)
        throw new Error(`Cluster ${target.cluster} has no admin URL: tenant databases cannot be created there`);
      await createTenantDatabase({
        ...this.#options.install,
        adminUrl: cluster.adminUrl,
        ownerUrl: cluster.ownerUrl,
        database: target.database,
        ddl: 'select',
      });
      await migrateLocation({
        clusters: owners,
        cluster: target.cluster,
        database: target.database,
        migrations: await dataMigrations(),
      });
    }
  }

  /**
   * Records a move of the tenant to `target` (or returns its open move there) without running
   * it: once this returns, the move is in `tenantry.moves`, so a crash before it runs leaves a
   * move to resume, not nothing. Run it with {@link run}.
   */
  start(tenantId: string, target: PlacementTarget): Promise<MoveRecord> {
    return this.#mover.start(tenantId, target);
  }

  /**
   * Runs a recorded move to its end: prepares its target (idempotent), then copies, freezes and
   * switches. Resumable at any step: call again after a crash. A rollback in progress is finished.
   */
  async run(moveId: string): Promise<MoveRecord> {
    const move = await this.#mover.get(moveId);
    const running = !['done', 'cleaned', 'rolled_back', 'rolling_back', 'switched'].includes(move.step);
    if (running) await this.prepare(move.target, move.tenantId);
    return this.#mover.run(moveId);
  }

  /** Records, prepares and runs a move of the tenant to `target` (resumable: call again after a crash). */
  async move(tenantId: string, target: PlacementTarget): Promise<MoveRecord> {
    const move = await this.start(tenantId, target);
    return this.run(move.id);
  }

  /** Continues a move that was interrupted (resumable at any step). */
  resume(moveId: string): Promise<MoveRecord> {
    return this.run(moveId);
  }

  /** Undoes a move that has not switched yet: the tenant stays where it was. */
  rollback(moveId: string): Promise<MoveRecord> {
    return this.#mover.rollback(moveId);
  }

  /**
   * Resumes every move that a stop or a crash left open (one after another): what a server does
   * at start, so an acknowledged move needs no person to finish. Returns the ids it resumed and
   * those that failed again (they stay open, resumable from the console or at the next start).
   */
  async resumeOpenMoves(): Promise<{ resumed: string[]; failed: string[] }> {
    const { rows } = await this.#catalog.query<{ id: string }>(
      `select id from tenantry.moves where step <> all ($1::text[]) order by created_at`,
      [['done', 'cleaned', 'rolled_back']],
    );
    const outcome = { resumed: [] as string[], failed: [] as string[] };
    for (const { id } of rows) {
      try {
        await this.run(id);
        outcome.resumed.push(id);
      } catch {
        outcome.failed.push(id);
      }
    }
    return outcome;
  }

  /** Deletes what a finished move left at its source (at once: no grace period). */
  cleanup(moveId: string): Promise<MoveRecord> {
    return this.#mover.cleanup(moveId, { force: true });
  }

  /** Where the tenant lives now. */
  where(tenantId: string): Promise<PlacementTarget> {
    return this.placements.get(tenantId);
  }

  async end(): Promise<void> {
    await this.placements.end();
    await this.#catalog.end();
  }
}
