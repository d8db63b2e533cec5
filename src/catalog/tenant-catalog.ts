import type pg from 'pg';
import type { z } from 'zod';
import { isTenantId } from '../context/tenant-id.js';
import { sqlStateOf, SqlState } from '../errors/sqlstate.js';
import { InvalidArgumentError, TenantNotFoundError, TenantryError } from '../errors/tenantry-error.js';
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
  constructor(private readonly db: Queryable) {}

  /** Creates an active tenant in the shared tier: one INSERT. Throws TENANT_SLUG_TAKEN. */
  async create(input: NewTenant): Promise<Tenant> {
    const tenant = parse(newTenantSchema, input);
    try {
      const { rows } = await this.db.query<TenantRow>(
        `insert into tenantry.tenants (slug, name, settings) values ($1, $2, $3) returning ${COLUMNS}`,
        [tenant.slug, tenant.name, tenant.settings ?? {}],
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
  async find(idOrSlug: string): Promise<Tenant | undefined> {
    const byId = isTenantId(idOrSlug);
    if (!byId) parse(slugSchema, idOrSlug);
    const { rows } = await this.db.query<TenantRow>(
      `select ${COLUMNS} from tenantry.tenants where ${byId ? 'id = $1' : 'slug = $1'}`,
      [byId ? idOrSlug.toLowerCase() : idOrSlug],
    );
    return rows[0] ? tenantFromRow(rows[0]) : undefined;
  }

  /** Like find, but throws TENANT_NOT_FOUND. */
  async get(idOrSlug: string): Promise<Tenant> {
    const tenant = await this.find(idOrSlug);
    if (!tenant) throw new TenantNotFoundError();
    return tenant;
  }

  /** Tenants ordered by creation, a page at a time (keyset pagination). */
  async list(options: ListTenantsOptions = {}): Promise<{ tenants: Tenant[]; nextCursor: string | undefined }> {
    const limit = options.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be an integer from 1 to 1000', 'limit');
    const params: unknown[] = [];
    const where: string[] = [];
    if (options.status) {
      if (!['active', 'suspended', 'deleted'].includes(options.status))
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

  /** Suspends an active tenant: its requests are refused until resumed; data is kept. */
  suspend(id: string): Promise<Tenant> {
    return this.#transition(id, ['active'], 'suspended', 'suspended_at = now()');
  }

  /** Resumes a suspended tenant. */
  resume(id: string): Promise<Tenant> {
    return this.#transition(id, ['suspended'], 'active', 'suspended_at = null');
  }

  /** Soft-deletes a tenant: it answers as not found from then on; rows stay until purged. */
  softDelete(id: string): Promise<Tenant> {
    return this.#transition(id, ['active', 'suspended'], 'deleted', 'deleted_at = now()');
  }

  /**
   * Restores a soft-deleted tenant (deleted → active) before its purge. Refused with
   * TENANT_PURGING while a purge of it runs; after the purge the tenant is gone (TENANT_NOT_FOUND).
   */
  restore(id: string): Promise<Tenant> {
    return this.#transition(id, ['deleted'], 'active', 'deleted_at = null').catch(refusePurging);
  }

  async #transition(idOrSlug: string, from: TenantStatus[], to: TenantStatus, set: string): Promise<Tenant> {
    const current = await this.get(idOrSlug);
    const { rows } = await this.db.query<TenantRow>(
      `update tenantry.tenants set status = $2, updated_at = now(), ${set}
        where id = $1 and status = any($3::text[]) returning ${COLUMNS}`,
      [current.id, to, from],
    );
    if (rows[0]) return tenantFromRow(rows[0]);
    const now = await this.get(current.id);
    if (now.status === to) return now; // already there: idempotent
    throw new TenantryError('INVALID_ARGUMENT', `Cannot move a ${now.status} tenant to ${to}`, {
      status: 409,
      details: { status: now.status },
    });
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
