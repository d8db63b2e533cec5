import type { z } from 'zod';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { MemoryCacheBackend } from '../cache/memory-cache-backend.js';
import { TenantCache } from '../cache/tenant-cache.js';
import { currentTenant, runAs } from '../context/tenant-context.js';
import type { SettingsDefinition, SettingsSchema } from './settings-definition.js';
import { settingsRouteOf, type SettingsFeed } from './settings-feed.js';
import { readSettingsRows, snapshotOf, type SettingsSnapshot } from './settings-snapshot.js';
import { TenantRoutes } from './tenant-routes.js';

/** Options of {@link TenantSettings}. */
export interface TenantSettingsOptions<S extends SettingsSchema> {
  definition: SettingsDefinition<S>;
  /** The catalog database (the owner pool): tenants' plans and overrides are read there. */
  db: Queryable;
  /** Where changes are heard; without it, values are re-read after `ttlMs` only. */
  feed?: SettingsFeed;
  /** The cache of resolved settings; default a private in-process one (needed for `peek`). */
  cache?: TenantCache;
  /** How long a tenant's resolved settings are kept without a doorbell (ms). Default 60,000. */
  ttlMs?: number;
}

const KEY = 'tenantry.settings';

/**
 * The current tenant's settings, typed, in every instance: resolved once per tenant (one
 * statement), cached in-process, dropped when the feed rings for that tenant. A job reads them
 * when it runs (inside its `runAs`), so it sees the value of that moment, not the enqueuer's.
 *
 * @example
 * const settings = new TenantSettings({ definition, db: ownerPool, feed });
 * const limit = await runAs(tenantId, () => settings.get('maxUploadMb')); // number
 */
export class TenantSettings<S extends SettingsSchema> {
  readonly definition: SettingsDefinition<S>;
  readonly #db: Queryable;
  readonly #cache: TenantCache;
  readonly #ttlMs: number;
  readonly #routes = new TenantRoutes();
  readonly #unlisten: (() => void) | undefined;

  constructor(options: TenantSettingsOptions<S>) {
    this.definition = options.definition;
    this.#db = options.db;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#cache = options.cache ?? new TenantCache({ backend: new MemoryCacheBackend(), ttlMs: this.#ttlMs });
    this.#unlisten = options.feed?.listen({
      tenant: (route) => this.#drop(this.#routes.tenantsOf(route)),
      resync: () => this.#drop(this.#routes.all()),
    });
  }

  /** The current tenant's resolved settings, with where each value came from. */
  async explain(): Promise<SettingsSnapshot<S>> {
    const tenant = currentTenant();
    // an in-process hit without the generation round of getOrLoad (the hot path)
    const hit = this.#cache.backend.peek ? this.#cache.peek<SettingsSnapshot<S>>(KEY) : undefined;
    if (hit) return hit;
    return this.#cache.getOrLoad(
      KEY,
      async () => {
        const forgotten = this.#routes.add(tenant, settingsRouteOf(tenant));
        if (forgotten) this.#drop([forgotten]);
        return snapshotOf(this.definition, await readSettingsRows(this.#db, tenant));
      },
      { ttlMs: this.#ttlMs },
    );
  }

  /** The current tenant's settings (typed, frozen). */
  async all(): Promise<Readonly<z.output<S>>> {
    return (await this.explain()).values;
  }

  /** One setting of the current tenant. */
  async get<K extends keyof z.output<S> & string>(key: K): Promise<z.output<S>[K]> {
    return (await this.explain()).values[key];
  }

  /**
   * One setting of the current tenant, synchronously, from the in-process cache: `undefined`
   * when this instance has not loaded the tenant's settings (or dropped them after a change).
   * The hot path: call `await all()` once at the start of the work, then `peek` anywhere.
   */
  peek<K extends keyof z.output<S> & string>(key: K): z.output<S>[K] | undefined {
    return this.#cache.peek<SettingsSnapshot<S>>(KEY)?.values[key];
  }

  /** Detaches from the feed (the feed itself is closed by its owner). */
  close(): void {
    this.#unlisten?.();
  }

  #drop(tenants: readonly string[]): void {
    for (const tenant of tenants) void runAs(tenant, () => this.#cache.invalidateTenant()).catch(() => undefined);
  }
}
