import { toTenantId } from '../context/tenant-id.js';
import { TenantNotFoundError } from '../errors/tenantry-error.js';
import type { ChangeMeta, TransactionPool } from '../settings/change-meta.js';
import type { FlagEvaluation } from '../settings/flag-definition.js';
import { FlagsAdmin, type FlagChange } from '../settings/flags-admin.js';
import type { SettingsFeed } from '../settings/settings-feed.js';
import type { PluginRegistry } from './plugin-registry.js';

/** Options of {@link PluginAdmin}. */
export interface PluginAdminOptions {
  registry: PluginRegistry;
  /** The catalog database as the owner role. */
  db: TransactionPool;
  /** Rings other instances after a commit when the feed's transport is Redis. */
  feed?: SettingsFeed;
}

/** Why a plugin is on or off for a tenant. */
export type PluginEnablementSource = 'plan' | 'override' | 'killed' | 'off';

/** One plugin as a tenant has it. */
export interface TenantPlugin {
  plugin: string;
  version: string;
  enabled: boolean;
  /** `plan`: its plan includes it; `override`: an admin's choice; `killed`: off for everyone; `off`: neither. */
  source: PluginEnablementSource;
  /** The plans that include it. */
  plans: readonly string[];
}

/** One enablement change: who, when, why, from what to what. */
export interface PluginChange {
  plugin: string;
  /** `enable`, `disable` (overrides), `reset` (back to the plan), `kill` / `revive` (everyone). */
  change: 'enable' | 'disable' | 'reset' | 'kill' | 'revive';
  actor: string;
  reason: string | null;
  changedAt: Date;
  /** null: a deployment-wide change (kill switch). */
  tenantId: string | null;
}

const SOURCE: Record<FlagEvaluation['variant'], PluginEnablementSource> = {
  killed: 'killed',
  override: 'override',
  plan: 'plan',
  rollout: 'plan',
  off: 'off',
};

/**
 * The control plane of plugins: enable or disable a plugin for one tenant (an override of its
 * plan), reset it to the plan, or switch a plugin off for everyone. Each change is one
 * transaction writing the flag change log (who, when, why, old, new), the tenant's audit log
 * (`flag.changed`, flag `plugins.<name>`) and a NOTIFY every instance hears at commit.
 *
 * @example
 * const admin = new PluginAdmin({ registry: plugins, db: ownerPool });
 * await admin.enable(tenantId, 'webhooks', { actor: 'staff:ann', reason: 'trial, ticket 88' });
 */
export class PluginAdmin {
  readonly registry: PluginRegistry;
  readonly #flags: FlagsAdmin;
  readonly #db: TransactionPool;

  constructor(options: PluginAdminOptions) {
    this.registry = options.registry;
    this.#db = options.db;
    this.#flags = new FlagsAdmin({
      definition: options.registry.flags,
      db: options.db,
      ...(options.feed ? { feed: options.feed } : {}),
    });
  }

  /** Enables `plugin` for the tenant, whatever its plan. */
  enable(tenantId: string, plugin: string, meta: ChangeMeta): Promise<void> {
    return this.#flags.override(tenantId, this.registry.enablementFlag(plugin), true, meta);
  }

  /** Disables `plugin` for the tenant, whatever its plan. Its data stays (isolated, unreachable). */
  disable(tenantId: string, plugin: string, meta: ChangeMeta): Promise<void> {
    return this.#flags.override(tenantId, this.registry.enablementFlag(plugin), false, meta);
  }

  /** Removes the tenant's override: the plan decides again. */
  reset(tenantId: string, plugin: string, meta: ChangeMeta): Promise<void> {
    return this.#flags.clear(tenantId, this.registry.enablementFlag(plugin), meta);
  }

  /** Switches `plugin` off for every tenant (overrides included) until `revive`. */
  kill(plugin: string, meta: ChangeMeta): Promise<void> {
    return this.#flags.kill(this.registry.enablementFlag(plugin), meta);
  }

  revive(plugin: string, meta: ChangeMeta): Promise<void> {
    return this.#flags.revive(this.registry.enablementFlag(plugin), meta);
  }

  /** Every plugin as the tenant has it now (read from the catalog, not a cache). */
  async list(tenantId: string): Promise<TenantPlugin[]> {
    const tenant = toTenantId(tenantId);
    const { rows } = await this.#db.query<{ plan: string | null; overrides: Record<string, unknown> }>(
      `select t.settings ->> 'plan' as plan,
              coalesce((select jsonb_object_agg(f.flag, f.value) from tenantry_private.tenant_flags f
                         where f.tenant_id = t.id and f.flag like 'plugins.%'), '{}') as overrides
         from tenantry.tenants t where t.id = $1`,
      [tenant],
    );
    if (!rows[0]) throw new TenantNotFoundError();
    const state = await this.#db.query<{ flag: string; killed: boolean }>(
      `select flag, killed from tenantry_private.feature_flags where flag like 'plugins.%'`,
    );
    const killed = new Set(state.rows.filter((r) => r.killed).map((r) => r.flag));
    return this.registry.names.map((name) => {
      const flag = this.registry.enablementFlag(name);
      const evaluation = this.registry.flags.evaluate(
        flag,
        { tenantId: tenant, plan: rows[0]!.plan, overrides: rows[0]!.overrides },
        { killed: killed.has(flag), rolloutPercent: null },
      );
      return {
        plugin: name,
        version: this.registry.get(name).version,
        enabled: evaluation.value === true,
        source: SOURCE[evaluation.variant],
        plans: this.registry.plansOf(name),
      };
    });
  }

  /** The tenant's enablement changes (and the deployment-wide ones), newest first. */
  async history(tenantId: string, options: { plugin?: string; limit?: number } = {}): Promise<PluginChange[]> {
    const changes = await this.#flags.changes({
      tenantId,
      ...(options.plugin ? { flag: this.registry.enablementFlag(options.plugin) } : {}),
      limit: options.limit ?? 50,
    });
    return changes.filter((c) => c.flag.startsWith('plugins.')).map(toPluginChange);
  }
}

function toPluginChange(c: FlagChange): PluginChange {
  const change =
    c.change === 'override' ? (c.newValue === true ? 'enable' : 'disable') : c.change === 'clear' ? 'reset' : c.change;
  return {
    plugin: c.flag.slice('plugins.'.length),
    change: change as PluginChange['change'],
    actor: c.actor,
    reason: c.reason,
    changedAt: c.changedAt,
    tenantId: c.tenantId,
  };
}
