import type { Queryable } from '../catalog/tenant-catalog.js';
import { MemoryCacheBackend } from '../cache/memory-cache-backend.js';
import { TenantCache } from '../cache/tenant-cache.js';
import { currentTenant, runAs } from '../context/tenant-context.js';
import { TenantNotFoundError } from '../errors/tenantry-error.js';
import type { FlagEvaluation, FlagsDefinition, FlagState } from './flag-definition.js';
import { settingsRouteOf, type SettingsFeed } from './settings-feed.js';
import { TenantRoutes } from './tenant-routes.js';

/** Options of {@link TenantFlags}. */
export interface TenantFlagsOptions {
  definition: FlagsDefinition;
  /** The catalog database (the owner pool). */
  db: Queryable;
  /** Where changes are heard (the same feed as settings); without it, state is re-read after `ttlMs`. */
  feed?: SettingsFeed;
  /** The per-tenant cache; default a private in-process one. */
  cache?: TenantCache;
  /** How long flag state is kept without a doorbell (ms). Default 60,000. */
  ttlMs?: number;
}

interface TenantFacts {
  plan: string | null;
  overrides: Record<string, unknown>;
}

const KEY = 'tenantry.flags';

/**
 * Evaluates the application's flags for the current tenant (`runAs`), in request handlers and
 * jobs alike: the deployment-wide state (kill switches, rollouts) and each tenant's plan and
 * overrides are cached in-process and dropped when the feed rings, so every instance follows a
 * change within a second. Use it through {@link TenantFlagProvider} (OpenFeature) or directly.
 *
 * @example
 * const flags = new TenantFlags({ definition, db: ownerPool, feed });
 * const { value } = await runAs(tenantId, () => flags.evaluate('new-editor'));
 */
export class TenantFlags {
  readonly definition: FlagsDefinition;
  readonly #db: Queryable;
  readonly #cache: TenantCache;
  readonly #ttlMs: number;
  readonly #routes = new TenantRoutes();
  readonly #unlisten: (() => void) | undefined;
  #state: { at: number; generation: number; flags: Promise<Map<string, FlagState>> } | undefined;
  #generation = 0;

  constructor(options: TenantFlagsOptions) {
    this.definition = options.definition;
    this.#db = options.db;
    this.#ttlMs = options.ttlMs ?? 60_000;
    this.#cache = options.cache ?? new TenantCache({ backend: new MemoryCacheBackend(), ttlMs: this.#ttlMs });
    this.#unlisten = options.feed?.listen({
      tenant: (route) => this.#drop(this.#routes.tenantsOf(route)),
      global: () => this.#dropState(),
      resync: () => {
        this.#dropState();
        this.#drop(this.#routes.all());
      },
    });
  }

  /** Evaluates `flag` for the current tenant (FLAG_UNKNOWN for an undeclared flag). */
  async evaluate(flag: string): Promise<FlagEvaluation> {
    this.definition.declaration(flag);
    const tenantId = currentTenant();
    const facts = await this.#facts(tenantId);
    const state = await this.#flagState();
    return this.definition.evaluate(flag, { tenantId, ...facts }, state.get(flag));
  }

  /** Detaches from the feed. */
  close(): void {
    this.#unlisten?.();
  }

  #facts(tenantId: string): Promise<TenantFacts> | TenantFacts {
    const hit = this.#cache.backend.peek ? this.#cache.peek<TenantFacts>(KEY) : undefined;
    if (hit) return hit;
    return this.#cache.getOrLoad<TenantFacts>(
      KEY,
      async () => {
        const forgotten = this.#routes.add(tenantId, settingsRouteOf(tenantId));
        if (forgotten) this.#drop([forgotten]);
        const { rows } = await this.#db.query<TenantFacts>(
          `select t.settings ->> 'plan' as plan,
                  coalesce((select jsonb_object_agg(f.flag, f.value) from tenantry_private.tenant_flags f where f.tenant_id = t.id), '{}') as overrides
             from tenantry.tenants t where t.id = $1`,
          [tenantId],
        );
        if (!rows[0]) throw new TenantNotFoundError();
        return rows[0];
      },
      { ttlMs: this.#ttlMs },
    );
  }

  #flagState(): Promise<Map<string, FlagState>> {
    const now = Date.now();
    if (this.#state && this.#state.generation === this.#generation && now - this.#state.at < this.#ttlMs)
      return this.#state.flags;
    const generation = this.#generation;
    const flags = this.#db
      .query<{ flag: string; killed: boolean; rollout_percent: string | null }>(
        'select flag, killed, rollout_percent::text from tenantry_private.feature_flags',
      )
      .then(
        ({ rows }) =>
          new Map(
            rows.map((r) => [
              r.flag,
              { killed: r.killed, rolloutPercent: r.rollout_percent === null ? null : Number(r.rollout_percent) },
            ]),
          ),
      );
    // a read overtaken by a doorbell is used by its callers but not kept (its generation is old)
    const entry = { at: now, generation, flags };
    this.#state = entry;
    flags.catch(() => {
      if (this.#state === entry) this.#state = undefined;
    });
    return flags;
  }

  #dropState(): void {
    this.#generation++;
  }

  #drop(tenants: readonly string[]): void {
    for (const tenant of tenants) void runAs(tenant, () => this.#cache.invalidateTenant()).catch(() => undefined);
  }
}
