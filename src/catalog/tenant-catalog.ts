import type pg from 'pg';
import type { z } from 'zod';
import { isTenantId } from '../context/tenant-id.js';
import { sqlStateOf, SqlState } from '../errors/sqlstate.js';
import {
  ConfigurationError,
  InvalidArgumentError,
  TenantNotFoundError,
  TenantryError,
} from '../errors/tenantry-error.js';
import {
  newTenantSchema,
  slugSchema,
  tenantFromRow,
  type NewTenant,
  type Tenant,
  type TenantRow,
  type TenantStatus,
} from './tenant.js';

/** Anything with pg's `query`: a pg.Pool, pg.Client or PoolClient connected as the owner role. */
export type Queryable = Pick<pg.Pool, 'query'>;

/** Where a tenant's data lives outside the home database (a `Placements` is one). */
export interface HoldPlacements {
  /** The cluster whose shared database is the home database (tenants without a placement live there). */
  readonly homeCluster: string;
  /** The owner pool of a placement's database. */
  ownerPool(where: { cluster: string; database?: string | null }): Queryable;
}

/** Options of {@link TenantCatalog}. */
export interface TenantCatalogOptions {
  /**
   * Owner connections to the placement databases (e.g. `new Placements({ catalog, owners })`):
   * suspending, resuming or deleting a tenant placed outside the home database (its own database,
   * another cluster) writes the hold there too. Without it such a transition is refused
   * (CONFIGURATION_ERROR) before anything changes.
   */
  placements?: HoldPlacements;
}

/** Writes (or releases) a tenant's hold in one database: the data plane refuses a held tenant (core migration 005). */
export async function writeTenantHold(db: Queryable, tenantId: string, status: TenantStatus): Promise<void> {
  if (status === 'active') {
    await db.query('delete from tenantry.inactive_tenants where tenant_key = $1', [tenantId]);
    return;
  }
  await db.query(
    `insert into tenantry.inactive_tenants (tenant_key, status) values ($1, $2)
     on conflict (tenant_key) do update set status = excluded.status, updated_at = excluded.updated_at`,
    [tenantId, status],
  );
}

const COLUMNS = 'id, slug, name, status, placement, settings, created_at, updated_at, suspended_at, deleted_at';

/** Options of TenantCatalog.list. */
export interface ListTenantsOptions {
  status?: TenantStatus;
  /** At most 1000; default 100. */
  limit?: number;
  /** The `nextCursor` of a previous page. */
  cursor?: string;
}

function parse<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new InvalidArgumentError(issue.message, issue.path.join('.') || undefined);
  }
  return result.data;
}

/**
 * The control plane's tenant catalog: create, read, list, suspend, resume and soft-delete
 * tenants in `tenantry.tenants`. Runs as the owner role (the app role sees only its own row).
 *
 * @example
 * const catalog = new TenantCatalog(ownerPool);
 * const acme = await catalog.create({ slug: 'acme', name: 'Acme Inc.' });
 */
export class TenantCatalog {
  readonly #placements: HoldPlacements | undefined;

  constructor(
    private readonly db: Queryable,
    options: TenantCatalogOptions = {},
  ) {
    this.#placements = options.placements;
  }

  /**
   * Creates an active tenant in the shared tier: one INSERT. Throws TENANT_SLUG_TAKEN. With
   * `{ provisioning: true }` (onboarding) it is made `provisioning`: held at the data plane and
   * answered as not found until {@link TenantCatalog.activate}.
   */
  async create(input: NewTenant, options: { provisioning?: boolean } = {}): Promise<Tenant> {
    const tenant = parse(newTenantSchema, input);
    try {
      const { rows } = await this.db.query<TenantRow>(
        `insert into tenantry.tenants (slug, name, settings, status) values ($1, $2, $3, $4) returning ${COLUMNS}`,
        [tenant.slug, tenant.name, tenant.settings ?? {}, options.provisioning ? 'provisioning' : 'active'],
      );
      return tenantFromRow(rows[0]!);
    } catch (error) {
      if (sqlStateOf(error) === SqlState.uniqueViolation) {
        throw new TenantryError('TENANT_SLUG_TAKEN', 'A tenant with this slug exists', {
          status: 409,
          details: { slug: tenant.slug },
          cause: error,
        });
      }
      throw error;
    }
  }

  /** The tenant with this id or slug, whatever its status, or undefined. */
  find(idOrSlug: string): Promise<Tenant | undefined> {
    return this.#find(idOrSlug, this.db);
  }

  async #find(idOrSlug: string, db: Queryable): Promise<Tenant | undefined> {
    const byId = isTenantId(idOrSlug);
    if (!byId) parse(slugSchema, idOrSlug);
    const { rows } = await db.query<TenantRow>(
      `select ${COLUMNS} from tenantry.tenants where ${byId ? 'id = $1' : 'slug = $1'}`,
      [byId ? idOrSlug.toLowerCase() : idOrSlug],
    );
    return rows[0] ? tenantFromRow(rows[0]) : undefined;
  }

  /** Like find, but throws TENANT_NOT_FOUND. */
  get(idOrSlug: string): Promise<Tenant> {
    return this.#get(idOrSlug, this.db);
  }

  async #get(idOrSlug: string, db: Queryable): Promise<Tenant> {
    const tenant = await this.#find(idOrSlug, db);
    if (!tenant) throw new TenantNotFoundError();
    return tenant;
  }

  /**
   * Tenants ordered by creation, a page at a time (keyset pagination): `{ tenants, nextCursor }`,
   * `nextCursor` undefined on the last page.
   *
   * @example
   * const { tenants, nextCursor } = await catalog.list({ limit: 100 });
   * const next = nextCursor ? await catalog.list({ limit: 100, cursor: nextCursor }) : undefined;
   */
  async list(options: ListTenantsOptions = {}): Promise<{ tenants: Tenant[]; nextCursor: string | undefined }> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be an integer from 1 to 1000', 'limit');
    const params: unknown[] = [];
    const where: string[] = [];
    if (options.status) {
      if (!['active', 'suspended', 'deleted', 'provisioning'].includes(options.status))
        throw new InvalidArgumentError('unknown status', 'status');
      params.push(options.status);
      where.push(`status = $${params.length}`);
    }
    if (options.cursor) {
      const [created, id] = decodeCursor(options.cursor);
      params.push(created, id);
      where.push(
        `(created_at, id) > (timestamptz 'epoch' + $${params.length - 1}::bigint * interval '1 microsecond', $${params.length}::uuid)`,
      );
    }
    params.push(limit + 1);
    const { rows } = await this.db.query<TenantRow & { micros: string }>(
      `select ${COLUMNS}, (extract(epoch from created_at) * 1000000)::bigint as micros from tenantry.tenants ${where.length ? `where ${where.join(' and ')}` : ''}
       order by created_at, id limit $${params.length}`,
      params,
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      tenants: page.map(tenantFromRow),
      nextCursor: rows.length > limit && last ? encodeCursor(last.micros, last.id) : undefined,
    };
  }

  /**
   * Suspends an active tenant: its requests are refused until resumed; data is kept. The tenant
   * pools refuse its context from the commit on, on every instance (TENANT_SUSPENDED).
   */
  suspend(id: string): Promise<Tenant> {
    return this.#transition(id, ['active'], 'suspended', 'suspended_at = now()');
  }

  /** Resumes a suspended tenant. */
  resume(id: string): Promise<Tenant> {
    return this.#transition(id, ['suspended'], 'active', 'suspended_at = null');
  }

  /**
   * Soft-deletes a tenant: it answers as not found from then on; rows stay until purged. The
   * tenant pools refuse its context from the commit on (TENANT_DELETED).
   */
  softDelete(id: string): Promise<Tenant> {
    // a provisioning tenant too: an abandoned sign-up is deleted and purged like any other
    return this.#transition(id, ['active', 'suspended', 'provisioning'], 'deleted', 'deleted_at = now()');
  }

  /**
   * Activates a tenant whose onboarding finished (provisioning → active); idempotent (an active
   * tenant is left as it is, and its holds in placement databases released again).
   */
  activate(id: string): Promise<Tenant> {
    return this.#transition(id, ['provisioning'], 'active', 'suspended_at = null');
  }

  /**
   * Restores a soft-deleted tenant (deleted → active) before its purge. Refused with
   * TENANT_PURGING while a purge of it runs; after the purge the tenant is gone (TENANT_NOT_FOUND).
   */
  restore(id: string): Promise<Tenant> {
    return this.#transition(id, ['deleted'], 'active', 'deleted_at = null').catch(refusePurging);
  }

  /**
   * Every status change goes through here, so the data plane follows it: the home database's
   * hold is written by a trigger in the status change's own transaction; a tenant placed in
   * another database (database tier, another cluster) is held there too. Order fails closed: a
   * tenant going inactive is held in its placement database BEFORE the status commits; one
   * becoming active is released there AFTER. A change that stopped half-way (a database
   * unreachable) is repaired by running the same transition again (it is idempotent) or by
   * `tenantry install --everywhere` (reconcileTenantHolds). One transition or placement switch
   * of a tenant at a time: the same advisory lock as Placements.assign. Given a client inside the
   * caller's own transaction, the placement database is written before that transaction commits
   * (a rollback there leaves a hold to repair; a rolled-back resume, a release to repair).
   */
  async #transition(idOrSlug: string, from: TenantStatus[], to: TenantStatus, set: string): Promise<Tenant> {
    const current = await this.get(idOrSlug);
    return withTenantLock(this.db, current.id, async (on) => {
      const remote = await this.#remoteLocation(on, current.id);
      // no transaction of its own: `db` may be the caller's client inside the caller's transaction
      const { rows: before } = await on.query<{ status: TenantStatus }>(
        'select status from tenantry.tenants where id = $1',
        [current.id],
      );
      let changed: TenantRow | undefined;
      if (before[0] && from.includes(before[0].status)) {
        // hold first: the placement database refuses the tenant before the catalog says so
        if (remote && to !== 'active') await writeTenantHold(remote, current.id, to);
        const { rows } = await on.query<TenantRow>(
          `update tenantry.tenants set status = $2, updated_at = now(), ${set}
            where id = $1 and status = any($3::text[]) returning ${COLUMNS}`,
          [current.id, to, from],
        );
        changed = rows[0];
      }
      const now = changed ? tenantFromRow(changed) : await this.#get(current.id, on);
      if (now.status !== to)
        throw new TenantryError('INVALID_ARGUMENT', `Cannot move a ${now.status} tenant to ${to}`, {
          status: 409,
          details: { status: now.status },
        });
      // released after the status change; and a repeated transition (already there) repairs a half-done one
      if (remote && (to === 'active' || !changed)) await writeTenantHold(remote, current.id, to);
      return now;
    });
  }

  /** The owner pool of the tenant's placement database when it is not the home database. */
  async #remoteLocation(on: Queryable, tenantId: string): Promise<Queryable | undefined> {
    const { rows } = await on.query<{ cluster: string; database: string | null }>(
      `select cluster, database from tenantry.placements where tenant_id = $1`,
      [tenantId],
    );
    const where = rows[0];
    const home = this.#placements?.homeCluster ?? 'home';
    if (!where || (where.cluster === home && where.database === null)) return undefined;
    if (!this.#placements)
      throw new ConfigurationError(
        `The tenant lives outside the home database (cluster ${where.cluster}${where.database ? `, database ${where.database}` : ''}): its status can change only with owner connections there (new TenantCatalog(pool, { placements }))`,
      );
    return this.#placements.ownerPool(where);
  }
}

/**
 * Runs `fn` holding the tenant's placement lock (the session-level advisory lock
 * Placements.assign takes), on a connection of its own when `db` is a pool: status changes,
 * placement switches and hold repairs of one tenant happen one at a time.
 */
export async function withTenantLock<T>(
  db: Queryable,
  tenantId: string,
  fn: (on: Queryable) => Promise<T>,
): Promise<T> {
  const key = `tenantry.placement:${tenantId}`;
  const pool = db as Queryable & { connect?: () => Promise<pg.PoolClient>; totalCount?: number };
  const holder = typeof pool.connect === 'function' && 'totalCount' in pool ? await pool.connect() : undefined;
  const on: Queryable = holder ?? db;
  try {
    await on.query('select pg_advisory_lock(hashtext($1))', [key]);
  } catch (error) {
    holder?.release();
    throw error;
  }
  try {
    return await fn(on);
  } finally {
    const unlocked = await on
      .query('select pg_advisory_unlock(hashtext($1))', [key])
      .then(() => true)
      .catch(() => false);
    // a connection whose unlock failed must not go back to the pool still holding the lock
    holder?.release(!unlocked);
  }
}

// lifecycle/purge's migration raises TR010 when a status change would bring back a tenant whose purge runs
function refusePurging(error: unknown): never {
  if (sqlStateOf(error) === 'TR010')
    throw new TenantryError('TENANT_PURGING', 'The tenant is being purged and cannot be restored', {
      status: 409,
      cause: error,
    });
  throw error;
}

// created_at in whole microseconds since the epoch: exact, unlike a JavaScript Date
function encodeCursor(micros: string, id: string): string {
  return Buffer.from(`${micros}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  const [created, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (!created || !id || !/^-?\d{1,19}$/.test(created) || !isTenantId(id))
    throw new InvalidArgumentError('invalid cursor', 'cursor');
  return [created, id];
}
