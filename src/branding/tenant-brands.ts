import type { Queryable } from '../catalog/tenant-catalog.js';
import { MemoryCacheBackend } from '../cache/memory-cache-backend.js';
import { TenantCache } from '../cache/tenant-cache.js';
import { currentTenant, runAs } from '../context/tenant-context.js';
import { TenantNotFoundError } from '../errors/tenantry-error.js';
import { settingsRouteOf, type SettingsFeed } from '../settings/settings-feed.js';
import { TenantRoutes } from '../settings/tenant-routes.js';
import { readBrand, type BrandSnapshot } from './brand-admin.js';
import type { LogoContentType } from './logo.js';

/** A logo's bytes as served. */
export interface LogoImage {
  contentType: LogoContentType;
  sha256: string;
  bytes: Buffer;
}

/** Options of {@link TenantBrands}. */
export interface TenantBrandsOptions {
  /** The catalog database as the owner role. */
  db: Queryable;
  /** Where changes are heard (the settings feed); without it, a brand is re-read after `ttlMs`. */
  feed?: SettingsFeed;
  /** The cache (default a private in-process one, 10 000 entries). */
  cache?: TenantCache;
  /** How long a tenant's brand is kept without a doorbell (ms). Default 60,000. */
  ttlMs?: number;
}

const BRAND = 'tenantry.brand';
const LOGO = 'tenantry.brand.logo';

/**
 * The current tenant's brand in every instance: read once (one statement), cached per tenant in a
 * `TenantCache` (namespaced by the tenant, so a page can never be served another tenant's brand
 * from the cache), dropped when the feed rings for that tenant.
 *
 * @example
 * const brands = new TenantBrands({ db: ownerPool, feed });
 * const { brand } = await runAs(tenantId, () => brands.get());
 */
export class TenantBrands {
  readonly #db: Queryable;
  readonly #cache: TenantCache;
  readonly #ttlMs: number;
  readonly #routes = new TenantRoutes();
  readonly #unlisten: (() => void) | undefined;

  constructor(options: TenantBrandsOptions) {
    this.#db = options.db;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#cache = options.cache ?? new TenantCache({ backend: new MemoryCacheBackend(), ttlMs: this.#ttlMs });
    this.#unlisten = options.feed?.listen({
      tenant: (route) => this.#drop(this.#routes.tenantsOf(route)),
      resync: () => this.#drop(this.#routes.all()),
    });
  }

  /** The current tenant's brand (its own or the default), with its version. */
  async get(): Promise<BrandSnapshot> {
    const tenant = currentTenant();
    return this.#cache.getOrLoad(
      BRAND,
      async () => {
        this.#remember(tenant);
        const snap = await readBrand(this.#db, tenant);
        if (!snap) throw new TenantNotFoundError();
        return snap;
      },
      { ttlMs: this.#ttlMs },
    );
  }

  /** The current tenant's logo, or `undefined` when it has none. */
  async logo(): Promise<LogoImage | undefined> {
    const { brand } = await this.get();
    if (!brand.logo) return undefined;
    const sha = brand.logo.sha256;
    const tenant = currentTenant();
    const image = await this.#cache.getOrLoad<{ contentType: LogoContentType; sha256: string; b64: string } | null>(
      `${LOGO}.${sha}`,
      async () => {
        this.#remember(tenant);
        const { rows } = await this.#db.query<{ content_type: LogoContentType; bytes: Buffer }>(
          'select content_type, bytes from tenantry_private.tenant_brand_logos where tenant_id = $1 and sha256 = $2',
          [tenant, sha],
        );
        // base64 in the cache: the Redis backend stores JSON
        return rows[0]
          ? { contentType: rows[0].content_type, sha256: sha, b64: rows[0].bytes.toString('base64') }
          : null;
      },
      { ttlMs: this.#ttlMs },
    );
    return image
      ? { contentType: image.contentType, sha256: image.sha256, bytes: Buffer.from(image.b64, 'base64') }
      : undefined;
  }

  /** Detaches from the feed. */
  close(): void {
    this.#unlisten?.();
  }

  #remember(tenant: string): void {
    const forgotten = this.#routes.add(tenant, settingsRouteOf(tenant));
    if (forgotten) this.#drop([forgotten]);
  }

  #drop(tenants: readonly string[]): void {
    for (const tenant of tenants) void runAs(tenant, () => this.#cache.invalidateTenant()).catch(() => undefined);
  }
}
