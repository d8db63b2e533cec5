import type pg from 'pg';
import { tenantFromRow, type Tenant, type TenantRow } from '../../catalog/tenant.js';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { TenantryError } from '../../errors/tenantry-error.js';
import type { PlacementTarget, Placements } from '../../tiers/placements.js';
import { ArchiveError } from './archive-error.js';
import type { ArchiveManifest } from './manifest.js';

const TENANT_COLUMNS = 'id, slug, name, status, placement, settings, created_at, updated_at, suspended_at, deleted_at';

/** An import a crash left open: what its leftovers are. */
export interface OpenImport {
  id: string;
  tenantId: string;
  target: Required<PlacementTarget>;
  replace: boolean;
}

/**
 * `tenantry.tenant_imports` and the slug's lock, on one catalog connection held for the whole
 * import (a session advisory lock: a killed import releases it with its connection).
 */
export class ImportJournal {
  readonly #client: pg.PoolClient;
  #locked: string | undefined;

  private constructor(client: pg.PoolClient) {
    this.#client = client;
  }

  static async open(catalog: pg.Pool): Promise<ImportJournal> {
    return new ImportJournal(await catalog.connect());
  }

  /** One import of a slug at a time, across processes; IMPORT_BUSY when another holds it. */
  async lock(slug: string): Promise<void> {
    const key = `tenantry.import:${slug}`;
    const { rows } = await this.#client.query<{ ok: boolean }>('select pg_try_advisory_lock(hashtext($1)) as ok', [
      key,
    ]);
    if (!rows[0]!.ok)
      throw new ArchiveError('IMPORT_BUSY', 'Another import of this slug is running', { details: { slug } });
    this.#locked = key;
  }

  /** Closes the slug's open imports (a crashed attempt), after `cleanup` removed what they committed. */
  async abandonOpen(slug: string, cleanup: (open: OpenImport) => Promise<void>): Promise<void> {
    const { rows } = await this.#client.query<OpenImport & { visible: boolean }>(
      `select i.id, i.tenant_id as "tenantId", i.target, i.replace,
              exists (select from tenantry.tenants t where t.id = i.tenant_id) as visible
         from tenantry.tenant_imports i where i.slug = $1 and i.step in ('loading', 'loaded')`,
      [slug],
    );
    for (const open of rows) {
      // never touch the rows of a tenant the catalog shows (a replace's tenant is reloaded whole anyway)
      if (!open.visible) await cleanup(open);
      await this.#client.query(
        `update tenantry.tenant_imports set step = 'abandoned', updated_at = now(), finished_at = now() where id = $1`,
        [open.id],
      );
    }
  }

  async start(entry: {
    tenantId: string;
    slug: string;
    manifestSha256: string;
    target: Required<PlacementTarget>;
    replace: boolean;
    signature: string;
  }): Promise<string> {
    const { rows } = await this.#client.query<{ id: string }>(
      `insert into tenantry.tenant_imports (tenant_id, slug, manifest_sha256, target, replace, signature)
       values ($1, $2, $3, $4, $5, $6) returning id`,
      [entry.tenantId, entry.slug, entry.manifestSha256, entry.target, entry.replace, entry.signature],
    );
    return rows[0]!.id;
  }

  async advance(id: string, step: 'loaded'): Promise<void> {
    await this.#client.query(`update tenantry.tenant_imports set step = $2, updated_at = now() where id = $1`, [
      id,
      step,
    ]);
  }

  /**
   * Closes a failed attempt as `failed` with its reason (the code and message: never row data,
   * messages name tables only), after `cleanup` removed what it committed for a tenant the
   * catalog does not show. When the clean-up itself fails (a database out of reach) the attempt
   * stays open with its reason, and the next import of the slug abandons and cleans it.
   */
  async fail(id: string, error: unknown, cleanup: (open: OpenImport) => Promise<void>): Promise<void> {
    const code = error instanceof TenantryError ? error.code : (sqlStateOf(error) ?? 'ERROR');
    const reason = `${code}: ${error instanceof Error ? error.message : String(error)}`.slice(0, 1000);
    try {
      const { rows } = await this.#client.query<OpenImport & { visible: boolean }>(
        `select i.id, i.tenant_id as "tenantId", i.target, i.replace,
                exists (select from tenantry.tenants t where t.id = i.tenant_id) as visible
           from tenantry.tenant_imports i where i.id = $1 and i.step in ('loading', 'loaded')`,
        [id],
      );
      const open = rows[0];
      if (!open) return;
      let closed = true;
      if (!open.visible) await cleanup(open).catch(() => (closed = false));
      await this.#client.query(
        `update tenantry.tenant_imports
            set error = $2, updated_at = now(),
                step = case when $3 then 'failed' else step end,
                finished_at = case when $3 then now() else finished_at end
          where id = $1`,
        [id, reason, closed],
      );
    } catch {
      // the catalog itself is out of reach: the open attempt is abandoned by the next run
    }
  }

  /**
   * The switch of a new tenant: the target database accepts the tenant under a new route epoch
   * (nobody holds it yet: no catalog row points there), then ONE catalog transaction inserts the
   * tenant, its placement and closes the journal. Before its commit nothing is visible; after, all.
   */
  async finishNew(
    id: string,
    run: {
      tenantId: string;
      slug: string;
      manifest: ArchiveManifest;
      target: Required<PlacementTarget>;
      placements: Placements;
      /** Loads the tenant's library rows (settings, flags, brand) in the switch's transaction, after its row. */
      loadLibrary?: (client: pg.ClientBase) => Promise<void>;
    },
  ): Promise<Tenant> {
    const { tenantId, slug, manifest, target, placements } = run;
    const c = this.#client;
    // the home cluster's shared database holds the catalog: the route change and the catalog row
    // commit together there; elsewhere the target accepts the route first (no catalog row points there yet)
    const atHome = target.cluster === 'home' && !target.database;
    const defaultRoute = atHome && target.tier === 'shared';
    let epoch = 0;
    if (!defaultRoute) {
      const { rows: e } = await c.query<{ epoch: string }>('select tenantry.next_route_epoch() as epoch');
      epoch = Number(e[0]!.epoch);
    }
    if (!atHome) {
      await placements
        .ownerPool(target)
        .query('update tenantry.local_route set serves_default = false where serves_default');
      await placements.setLocalState(target, tenantId, 'active', epoch);
    }
    const status = manifest.tenant.status === 'active' ? 'active' : 'suspended';
    await c.query('begin');
    try {
      await c.query(
        `insert into tenantry.tenants (id, slug, name, status, settings, created_at, suspended_at)
         values ($1, $2, $3, $4, $5, coalesce($6::timestamptz, now()), case when $4 = 'suspended' then now() end)`,
        [
          tenantId,
          slug,
          manifest.tenant.name,
          status,
          manifest.tenant.settings,
          tenantId === manifest.tenant.id ? manifest.tenant.createdAt : null,
        ],
      );
      // a tenant of the home shared tables takes the default route (served by a plain TenantPool too): no placement
      if (defaultRoute) await c.query('delete from tenantry.local_tenants where tenant_key = $1', [tenantId]);
      else if (atHome)
        await c.query(
          `insert into tenantry.local_tenants (tenant_key, state, epoch, schema) values ($1, 'active', $2, $3)
           on conflict (tenant_key) do update set state = 'active', epoch = excluded.epoch, schema = excluded.schema, updated_at = excluded.updated_at`,
          [tenantId, epoch, target.schema],
        );
      const { rows } = defaultRoute
        ? await c.query<TenantRow>(`select ${TENANT_COLUMNS} from tenantry.tenants where id = $1`, [tenantId])
        : await c.query<TenantRow>(
            `with placed as (
               insert into tenantry.placements (tenant_id, tier, cluster, database, schema, epoch) values ($1, $2, $3, $4, $5, $6)
               returning tenant_id, tier, cluster, database, schema, epoch)
             update tenantry.tenants t
                set placement = jsonb_strip_nulls(jsonb_build_object('tier', p.tier, 'cluster', p.cluster, 'database', p.database, 'schema', p.schema, 'epoch', p.epoch))
               from placed p where t.id = p.tenant_id
             returning ${TENANT_COLUMNS.split(', ')
               .map((x) => `t.${x}`)
               .join(', ')}`,
            [tenantId, target.tier, target.cluster, target.database, target.schema, epoch],
          );
      await run.loadLibrary?.(c);
      await c.query(
        `update tenantry.tenant_imports set step = 'done', updated_at = now(), finished_at = now() where id = $1`,
        [id],
      );
      await c.query('commit');
      return tenantFromRow(rows[0]!);
    } catch (error) {
      await c.query('rollback').catch(() => undefined);
      if (sqlStateOf(error) === '23505')
        throw new ArchiveError('IMPORT_TENANT_EXISTS', 'A tenant with this slug or id was created meanwhile', {
          details: { slug },
          cause: error,
        });
      throw error;
    }
  }

  /** The switch of a replace: the catalog row takes the archive's name and settings (its status stays: resume it when ready). */
  async finishReplace(
    id: string,
    tenantId: string,
    manifest: ArchiveManifest,
    loadLibrary?: (client: pg.ClientBase) => Promise<void>,
  ): Promise<Tenant> {
    const c = this.#client;
    await c.query('begin');
    try {
      const { rows } = await c.query<TenantRow>(
        `update tenantry.tenants set name = $2, settings = $3, updated_at = now() where id = $1 returning ${TENANT_COLUMNS}`,
        [tenantId, manifest.tenant.name, manifest.tenant.settings],
      );
      await loadLibrary?.(c);
      await c.query(
        `update tenantry.tenant_imports set step = 'done', updated_at = now(), finished_at = now() where id = $1`,
        [id],
      );
      await c.query('commit');
      return tenantFromRow(rows[0]!);
    } catch (error) {
      await c.query('rollback').catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#locked)
      await this.#client.query('select pg_advisory_unlock(hashtext($1))', [this.#locked]).catch(() => undefined);
    this.#client.release();
  }
}
