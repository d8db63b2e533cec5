import type { Queryable } from '../catalog/tenant-catalog.js';
import { currentTenant, runAs, tryCurrentTenant } from '../context/tenant-context.js';
import { ConfigurationError, type TenantryErrorCode } from '../errors/tenantry-error.js';
import type { EnqueueOptions, TenantJobs } from '../jobs/tenant-jobs.js';
import type { SettingsFeed } from '../settings/settings-feed.js';
import { TenantFlags } from '../settings/tenant-flags.js';
import type { PluginContext } from './plugin-definition.js';
import { PluginDisabledError, PluginUnknownError } from './plugin-errors.js';
import type { PluginRegistry } from './plugin-registry.js';

/** Options of {@link PluginHost}. */
export interface PluginHostOptions {
  registry: PluginRegistry;
  /** The catalog database as the owner role (where enablement lives, with the flags). */
  db: Queryable;
  /** The settings feed: every instance follows an enable or disable within a second. */
  feed?: SettingsFeed;
  /**
   * The application's TenantFlags, when its definition includes `registry.flagDeclarations`
   * (one cache for both); by default the host keeps its own.
   */
  flags?: TenantFlags;
  /** Where the plugins' jobs are defined (before `jobs.start()`), each gated on enablement. */
  jobs?: Pick<TenantJobs, 'define' | 'enqueue'>;
  /** How long enablement is cached without a doorbell (ms, default 60,000). */
  ttlMs?: number;
  /** Told when an event handler throws (the other plugins' handlers still run). */
  onEventError?: (error: unknown, where: { plugin: string; event: string }) => void;
}

/** What {@link PluginHost.emit} did for one event. */
export interface EmitResult {
  /** Plugins whose handler ran to the end. */
  ran: string[];
  /** Plugins with a handler that are not enabled for the tenant: not called. */
  skipped: string[];
  /** Plugins whose handler threw (see `onEventError`). */
  failed: string[];
}

/**
 * Runs the application's plugins per tenant. Enablement is a boolean flag per plugin
 * (`plugins.<name>`: the plan's entitlement, or an admin's override per tenant, audited): read
 * through a cached `TenantFlags` that the settings feed invalidates on every instance within a
 * second. A disabled plugin's routes answer 404 (`fastifyPluginRoutes`), its event handlers are
 * not called, its jobs are refused (PLUGIN_DISABLED) before their handler runs.
 *
 * @example
 * const host = new PluginHost({ registry: plugins, db: ownerPool, feed, jobs });
 * if (await host.isEnabled(tenantId, 'webhooks')) …
 * await runAs(tenantId, () => host.emit('recording.created', { recordingId }));
 */
export class PluginHost {
  readonly registry: PluginRegistry;
  readonly #flags: TenantFlags;
  readonly #ownFlags: boolean;
  readonly #jobs: Pick<TenantJobs, 'define' | 'enqueue'> | undefined;
  readonly #onEventError: PluginHostOptions['onEventError'];
  readonly #contexts = new Map<string, PluginContext>();
  readonly #flagOf = new Map<string, string>();

  constructor(options: PluginHostOptions) {
    this.registry = options.registry;
    this.#ownFlags = !options.flags;
    this.#flags =
      options.flags ??
      new TenantFlags({
        definition: options.registry.flags,
        db: options.db,
        ...(options.feed ? { feed: options.feed } : {}),
        ...(options.ttlMs === undefined ? {} : { ttlMs: options.ttlMs }),
      });
    for (const name of this.registry.names) {
      try {
        this.#flags.definition.declaration(this.registry.enablementFlag(name));
      } catch (error) {
        throw new ConfigurationError(
          `the flags given to PluginHost lack ${this.registry.enablementFlag(name)}: spread registry.flagDeclarations into defineFlags`,
          error,
        );
      }
    }
    for (const name of this.registry.names) this.#flagOf.set(name, this.registry.enablementFlag(name));
    this.#jobs = options.jobs;
    this.#onEventError = options.onEventError;
    if (this.#jobs) this.#defineJobs(this.#jobs);
  }

  /** Whether `plugin` is enabled for `tenantId` (cached; PLUGIN_UNKNOWN for a name not registered). */
  isEnabled(tenantId: string, plugin: string): Promise<boolean> {
    // the hot path of every plugin route and job: no async frame of its own, the flag name precomputed
    const flag = this.#flagOf.get(plugin);
    if (flag === undefined) return Promise.reject(new PluginUnknownError(String(plugin)));
    const evaluate = () => this.#flags.evaluate(flag).then((r) => r.value === true);
    return tryCurrentTenant() === tenantId ? evaluate() : runAs(tenantId, evaluate);
  }

  /** The plugins enabled for `tenantId`, in registration order. */
  async enabledPlugins(tenantId: string): Promise<string[]> {
    const out: string[] = [];
    for (const name of this.registry.names) if (await this.isEnabled(tenantId, name)) out.push(name);
    return out;
  }

  /** Throws PLUGIN_DISABLED (404) unless `plugin` is enabled for the current tenant. */
  async assertEnabled(plugin: string): Promise<void> {
    if (!(await this.isEnabled(currentTenant(), plugin))) throw new PluginDisabledError(plugin);
  }

  /**
   * Calls every enabled plugin's handler of `event` for the current tenant (inside `runAs`), one
   * after another; a plugin without it enabled is skipped, one that throws is reported to
   * `onEventError` and does not stop the others.
   */
  async emit(event: string, payload: unknown): Promise<EmitResult> {
    const tenantId = currentTenant();
    const result: EmitResult = { ran: [], skipped: [], failed: [] };
    for (const name of this.registry.names) {
      const handler = this.registry.get(name).events?.[event];
      if (!handler) continue;
      if (!(await this.isEnabled(tenantId, name))) {
        result.skipped.push(name);
        continue;
      }
      try {
        await handler(payload, this.context(name));
        result.ran.push(name);
      } catch (error) {
        result.failed.push(name);
        this.#onEventError?.(error, { plugin: name, event });
      }
    }
    return result;
  }

  /** The context a plugin's handlers get (its name, its job queue). */
  context(plugin: string): PluginContext {
    const name = this.registry.get(plugin).name;
    let ctx = this.#contexts.get(name);
    if (!ctx) {
      ctx = Object.freeze({
        plugin: name,
        enqueue: async <T>(job: string, payload: T, options?: EnqueueOptions): Promise<string> => {
          if (!this.#jobs) throw new ConfigurationError('PluginHost has no jobs: pass `jobs` to enqueue plugin jobs');
          await this.assertEnabled(name);
          return this.#jobs.enqueue(`${name}.${job}`, payload, options);
        },
      });
      this.#contexts.set(name, ctx);
    }
    return ctx;
  }

  /** Detaches the host's own flag cache from the feed. */
  close(): void {
    if (this.#ownFlags) this.#flags.close();
  }

  #defineJobs(jobs: Pick<TenantJobs, 'define'>): void {
    for (const name of this.registry.names) {
      const plugin = this.registry.get(name);
      for (const [job, spec] of Object.entries(plugin.jobs ?? {})) {
        const ctx = this.context(name);
        jobs.define(`${name}.${job}`, (payload, context) => spec.handler(payload as never, context, ctx), {
          ...spec.options,
          // checked by the worker before every run, retries and re-drives included
          gate: async (tenantId: string): Promise<TenantryErrorCode | undefined> =>
            (await this.isEnabled(tenantId, name)) ? undefined : 'PLUGIN_DISABLED',
        });
      }
    }
  }
}
