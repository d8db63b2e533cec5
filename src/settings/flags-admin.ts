import type pg from 'pg';
import { toTenantId } from '../context/tenant-id.js';
import { InvalidArgumentError, TenantNotFoundError } from '../errors/tenantry-error.js';
import { checkMeta, inTransaction, type ChangeMeta, type TransactionPool } from './change-meta.js';
import type { FlagEvaluation, FlagsDefinition, FlagState } from './flag-definition.js';
import {
  DEFAULT_SETTINGS_CHANNEL,
  GLOBAL_SETTINGS_ROUTE,
  settingsRouteOf,
  type SettingsFeed,
} from './settings-feed.js';

/** What a flag change was. */
export type FlagChangeKind = 'kill' | 'revive' | 'rollout' | 'override' | 'clear';

/** One line of the flag change log. */
export interface FlagChange {
  id: number;
  /** `null`: a deployment-wide change (kill switch, rollout). */
  tenantId: string | null;
  flag: string;
  change: FlagChangeKind;
  oldValue: unknown;
  newValue: unknown;
  actor: string;
  reason: string | null;
  changedAt: Date;
}

/** One flag as a tenant gets it (see {@link FlagsAdmin.list}). */
export interface TenantFlagView extends FlagEvaluation {
  flag: string;
  /** The tenant's own override, or `undefined`. */
  override: unknown;
  /** The deployment-wide state: kill switch, rollout (`null`: the declaration's). */
  killed: boolean;
  rolloutPercent: number | null;
  description?: string;
}

/** Options of {@link FlagsAdmin}. */
export interface FlagsAdminOptions {
  definition: FlagsDefinition;
  /** The catalog database as the owner role. */
  db: TransactionPool;
  /** Rings other instances after a commit when the transport is Redis. */
  feed?: SettingsFeed;
  /** The NOTIFY channel (default `tenantry_settings`): must be the feed's. */
  channel?: string;
}

/**
 * The control plane's side of feature flags: kill switches and rollouts for the whole
 * deployment, overrides per tenant. Every change is one transaction that writes the change log
 * (`tenantry_private.flag_changes`: who, when, why, old, new), the tenant's audit log for a
 * tenant's override (`flag.changed`), and a NOTIFY every instance hears at commit.
 *
 * @example
 * const admin = new FlagsAdmin({ definition: flags, db: ownerPool });
 * await admin.kill('new-editor', { actor: 'staff:alice', reason: 'incident 231' });
 */
export class FlagsAdmin {
  readonly definition: FlagsDefinition;
  readonly #db: TransactionPool;
  readonly #feed: SettingsFeed | undefined;
  readonly #channel: string;

  constructor(options: FlagsAdminOptions) {
    this.definition = options.definition;
    this.#db = options.db;
    this.#feed = options.feed;
    this.#channel = options.channel ?? DEFAULT_SETTINGS_CHANNEL;
  }

  /** The kill switch: every tenant gets the flag's `off` value, overrides and rollouts included. */
  async kill(flag: string, meta: ChangeMeta): Promise<void> {
    return this.#global(flag, meta, 'kill', { killed: true });
  }

  /** Lifts the kill switch. */
  async revive(flag: string, meta: ChangeMeta): Promise<void> {
    return this.#global(flag, meta, 'revive', { killed: false });
  }

  /** Sets the rollout percentage (0-100), or `null` for the declaration's. */
  async setRollout(flag: string, percent: number | null, meta: ChangeMeta): Promise<void> {
    const rolloutPercent = percent === null ? null : this.definition.checkRollout(flag, percent);
    return this.#global(flag, meta, 'rollout', { rolloutPercent });
  }

  /** Overrides the flag for one tenant. */
  async override(tenantId: string, flag: string, value: unknown, meta: ChangeMeta): Promise<void> {
    const checked = this.definition.check(flag, value);
    await this.#tenant(tenantId, flag, meta, 'override', checked);
  }

  /** Removes a tenant's override. */
  async clear(tenantId: string, flag: string, meta: ChangeMeta): Promise<void> {
    this.definition.declaration(flag);
    await this.#tenant(tenantId, flag, meta, 'clear', undefined);
  }

  /** Every declared flag as the tenant gets it now: value, why, its override, the global state. */
  async list(tenantId: string): Promise<TenantFlagView[]> {
    const tenant = toTenantId(tenantId);
    const { rows } = await this.#db.query<{ plan: string | null; overrides: Record<string, unknown> }>(
      `select t.settings ->> 'plan' as plan,
              coalesce((select jsonb_object_agg(f.flag, f.value) from tenantry_private.tenant_flags f where f.tenant_id = t.id), '{}') as overrides
         from tenantry.tenants t where t.id = $1`,
      [tenant],
    );
    if (!rows[0]) throw new TenantNotFoundError();
    const { rows: states } = await this.#db.query<{ flag: string; killed: boolean; rollout_percent: string | null }>(
      'select flag, killed, rollout_percent::text from tenantry_private.feature_flags',
    );
    const state = new Map<string, FlagState>(
      states.map((r) => [r.flag, { killed: r.killed, rolloutPercent: nullableNumber(r.rollout_percent) }]),
    );
    const facts = { tenantId: tenant, plan: rows[0].plan, overrides: rows[0].overrides };
    return this.definition.names.map((flag) => {
      const declared = this.definition.declaration(flag) as { description?: string };
      return {
        flag,
        ...this.definition.evaluate(flag, facts, state.get(flag)),
        override: rows[0]!.overrides[flag],
        killed: state.get(flag)?.killed ?? false,
        rolloutPercent: state.get(flag)?.rolloutPercent ?? null,
        ...(declared.description ? { description: declared.description } : {}),
      };
    });
  }

  /** The change log, newest first: a tenant's (`tenantId`, with the deployment-wide ones unless `onlyTenant`), a flag's. */
  async changes(options: { tenantId?: string; flag?: string; limit?: number } = {}): Promise<FlagChange[]> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be 1 to 1000', 'limit');
    const tenant = options.tenantId === undefined ? null : toTenantId(options.tenantId);
    const { rows } = await this.#db.query<{
      id: string;
      tenant_id: string | null;
      flag: string;
      change: FlagChangeKind;
      old_value: unknown;
      new_value: unknown;
      actor: string;
      reason: string | null;
      changed_at: Date;
    }>(
      `select id::text, tenant_id, flag, change, old_value, new_value, actor, reason, changed_at
         from tenantry_private.flag_changes
        where ($1::uuid is null or tenant_id = $1 or tenant_id is null) and ($2::text is null or flag = $2)
        order by id desc limit $3`,
      [tenant, options.flag ?? null, limit],
    );
    return rows.map((r) => ({
      id: Number(r.id),
      tenantId: r.tenant_id,
      flag: r.flag,
      change: r.change,
      oldValue: r.old_value,
      newValue: r.new_value,
      actor: r.actor,
      reason: r.reason,
      changedAt: r.changed_at,
    }));
  }

  async #global(
    flag: string,
    meta: ChangeMeta,
    change: FlagChangeKind,
    set: { killed?: boolean; rolloutPercent?: number | null },
  ): Promise<void> {
    this.definition.declaration(flag);
    const { actor, reason } = checkMeta(meta);
    await inTransaction(this.#db, async (client) => {
      await client.query('insert into tenantry_private.feature_flags (flag) values ($1) on conflict do nothing', [
        flag,
      ]);
      const { rows } = await client.query<{ killed: boolean; rollout_percent: string | null }>(
        'select killed, rollout_percent::text from tenantry_private.feature_flags where flag = $1 for update',
        [flag],
      );
      const old = { killed: rows[0]!.killed, rolloutPercent: nullableNumber(rows[0]!.rollout_percent) };
      const next = { ...old, ...set };
      await client.query(
        `update tenantry_private.feature_flags set killed = $2, rollout_percent = $3, updated_at = clock_timestamp() where flag = $1`,
        [flag, next.killed, next.rolloutPercent],
      );
      await this.#log(client, null, flag, change, old, next, actor, reason);
      await client.query('select pg_notify($1, $2)', [this.#channel, GLOBAL_SETTINGS_ROUTE]);
    });
    await this.#feed?.publish(GLOBAL_SETTINGS_ROUTE);
  }

  async #tenant(
    tenantId: string,
    flag: string,
    meta: ChangeMeta,
    change: 'override' | 'clear',
    value: unknown,
  ): Promise<void> {
    const tenant = toTenantId(tenantId);
    const { actor, reason, actorKind, actorId } = checkMeta(meta);
    await inTransaction(this.#db, async (client) => {
      const found = await client.query('select 1 from tenantry.tenants where id = $1 for key share', [tenant]);
      if (found.rows.length === 0) throw new TenantNotFoundError();
      const { rows } = await client.query<{ value: unknown }>(
        'select value from tenantry_private.tenant_flags where tenant_id = $1 and flag = $2 for update',
        [tenant, flag],
      );
      const old = rows[0]?.value;
      if (value === undefined)
        await client.query('delete from tenantry_private.tenant_flags where tenant_id = $1 and flag = $2', [
          tenant,
          flag,
        ]);
      else
        await client.query(
          `insert into tenantry_private.tenant_flags (tenant_id, flag, value) values ($1, $2, $3)
           on conflict (tenant_id, flag) do update set value = excluded.value`,
          [tenant, flag, JSON.stringify(value)],
        );
      await this.#log(client, tenant, flag, change, old, value, actor, reason);
      await client.query(
        `insert into tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail) values ($1, $4, $5, 'flag.changed', $2, $3)`,
        [tenant, reason, { actor, flag, change }, actorKind, actorId],
      );
      await client.query('select pg_notify($1, $2)', [this.#channel, settingsRouteOf(tenant)]);
    });
    await this.#feed?.publish(settingsRouteOf(tenant));
  }

  async #log(
    client: pg.PoolClient,
    tenant: string | null,
    flag: string,
    change: FlagChangeKind,
    old: unknown,
    next: unknown,
    actor: string,
    reason: string | null,
  ): Promise<void> {
    await client.query(
      `insert into tenantry_private.flag_changes (tenant_id, flag, change, old_value, new_value, actor, reason)
       values ($1, $2, $3, $4, $5, $6, $7)`,
      [
        tenant,
        flag,
        change,
        old === undefined ? null : JSON.stringify(old),
        next === undefined ? null : JSON.stringify(next),
        actor,
        reason,
      ],
    );
  }
}

function nullableNumber(value: string | null): number | null {
  return value === null ? null : Number(value);
}
