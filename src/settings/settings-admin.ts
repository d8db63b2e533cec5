import type pg from 'pg';
import { toTenantId } from '../context/tenant-id.js';
import { InvalidArgumentError, TenantNotFoundError } from '../errors/tenantry-error.js';
import { checkMeta, inTransaction, type ChangeMeta, type TransactionPool } from './change-meta.js';
import type { SettingsDefinition, SettingsSchema } from './settings-definition.js';
import { SettingsVersionNotFoundError, SettingUnknownError } from './settings-errors.js';
import { DEFAULT_SETTINGS_CHANNEL, settingsRouteOf, type SettingsFeed } from './settings-feed.js';
import { readSettingsRows, snapshotOf, type SettingsSnapshot } from './settings-snapshot.js';

/** One line of a tenant's settings history. */
export interface SettingsHistoryEntry {
  version: number;
  key: string;
  action: 'set' | 'unset' | 'rollback';
  /** `null`: the key had no override. */
  oldValue: unknown;
  /** `null`: the key has no override since. */
  newValue: unknown;
  actor: string;
  reason: string | null;
  changedAt: Date;
}

/** What a write did. */
export interface SettingsChange {
  /** The tenant's change number, or `null` when nothing changed (an unset of a key not overridden). */
  version: number | null;
  keys: string[];
}

/** Options of {@link SettingsAdmin}. */
export interface SettingsAdminOptions<S extends SettingsSchema> {
  definition: SettingsDefinition<S>;
  /** The catalog database as the owner role (the control plane's pool). */
  db: TransactionPool;
  /** Rings other instances after a commit when the transport is Redis (PostgreSQL rings by itself). */
  feed?: SettingsFeed;
  /** The NOTIFY channel (default `tenantry_settings`): must be the feed's. */
  channel?: string;
}

const PLAN = /^[a-z][a-z0-9_-]{0,62}$/;

/**
 * The control plane's side of settings: validated, versioned, audited, reversible writes of a
 * tenant's overrides. Every write is one transaction: the tenant's change counter is locked and
 * bumped, the new overrides are checked against the whole schema (a refused value changes
 * nothing, and the error names the key), the history gets old and new values with who and
 * why, the tenant's audit log an entry (`settings.changed`), and the feed's channel a NOTIFY
 * that every instance hears at commit. Used by `tenantry tenants settings` and admin APIs.
 *
 * @example
 * const admin = new SettingsAdmin({ definition, db: ownerPool });
 * await admin.set(tenantId, 'maxUploadMb', 50, { actor: 'staff:alice', reason: 'ticket 4411' });
 */
export class SettingsAdmin<S extends SettingsSchema> {
  readonly definition: SettingsDefinition<S>;
  readonly #db: TransactionPool;
  readonly #feed: SettingsFeed | undefined;
  readonly #channel: string;

  constructor(options: SettingsAdminOptions<S>) {
    this.definition = options.definition;
    this.#db = options.db;
    this.#feed = options.feed;
    this.#channel = options.channel ?? DEFAULT_SETTINGS_CHANNEL;
  }

  /** The tenant's resolved settings and where each value comes from. */
  async resolve(tenantId: string): Promise<SettingsSnapshot<S>> {
    return snapshotOf(this.definition, await readSettingsRows(this.#db, toTenantId(tenantId)));
  }

  /** Overrides `key` for the tenant. */
  async set(tenantId: string, key: string, value: unknown, meta: ChangeMeta): Promise<SettingsChange> {
    this.definition.check(key, value);
    return this.#change(tenantId, meta, () => ({ [key]: { value, action: 'set' as const } }));
  }

  /** Removes the tenant's override of `key` (the plan's or the defaults' value applies again). */
  async unset(tenantId: string, key: string, meta: ChangeMeta): Promise<SettingsChange> {
    return this.#change(tenantId, meta, (current) => {
      // a key the schema dropped can still be unset (cleaning up its stored override)
      if (Object.hasOwn(current, key)) return { [key]: { value: undefined, action: 'unset' as const } };
      if (!this.definition.keys.includes(key)) throw new SettingUnknownError(key);
      return {};
    });
  }

  /**
   * Puts the tenant's overrides back as they were right after change `version` (0: before any
   * change), as one new change: nothing of the history is rewritten, so a rollback is itself
   * reversible.
   */
  async rollback(tenantId: string, version: number, meta: ChangeMeta): Promise<SettingsChange> {
    if (!Number.isSafeInteger(version) || version < 0)
      throw new InvalidArgumentError('version must be a whole number ≥ 0', 'version');
    return this.#change(tenantId, meta, async (current, client, head) => {
      if (version > head) throw new SettingsVersionNotFoundError(version);
      const { rows } = await client.query<{ key: string; new_value: unknown }>(
        `select distinct on (key) key, new_value from tenantry_private.tenant_settings_history
          where tenant_id = $1 and version <= $2 order by key, version desc`,
        [tenantId, version],
      );
      const target = new Map(rows.filter((r) => r.new_value !== null).map((r) => [r.key, r.new_value]));
      const changes: Record<string, { value: unknown; action: 'rollback' }> = {};
      for (const key of new Set([...Object.keys(current), ...target.keys()])) {
        const want = target.get(key);
        if (JSON.stringify(want) !== JSON.stringify(current[key])) changes[key] = { value: want, action: 'rollback' };
      }
      return changes;
    });
  }

  /** The tenant's history, newest first (`key` filters; `before` pages by version). */
  async history(
    tenantId: string,
    options: { key?: string; limit?: number; before?: number } = {},
  ): Promise<SettingsHistoryEntry[]> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be 1 to 1000', 'limit');
    const { rows } = await this.#db.query<{
      version: string;
      key: string;
      action: SettingsHistoryEntry['action'];
      old_value: unknown;
      new_value: unknown;
      actor: string;
      reason: string | null;
      changed_at: Date;
    }>(
      `select version::text, key, action, old_value, new_value, actor, reason, changed_at
         from tenantry_private.tenant_settings_history
        where tenant_id = $1 and ($2::text is null or key = $2) and ($3::bigint is null or version < $3)
        order by version desc, key limit $4`,
      [toTenantId(tenantId), options.key ?? null, options.before ?? null, limit],
    );
    return rows.map((r) => ({
      version: Number(r.version),
      key: r.key,
      action: r.action,
      oldValue: r.old_value,
      newValue: r.new_value,
      actor: r.actor,
      reason: r.reason,
      changedAt: r.changed_at,
    }));
  }

  /**
   * Sets the tenant's plan (`tenants.settings.plan`, which placement and limits read too),
   * audited (`settings.plan_changed`) and announced like a settings change.
   */
  async setPlan(tenantId: string, plan: string, meta: ChangeMeta): Promise<void> {
    const tenant = toTenantId(tenantId);
    const { actor, reason, actorKind, actorId } = checkMeta(meta);
    if (!PLAN.test(plan)) throw new InvalidArgumentError(`plan must match ${PLAN.source}`, 'plan');
    await inTransaction(this.#db, async (client) => {
      const { rows } = await client.query<{ old: string | null }>(
        `update tenantry.tenants t set settings = jsonb_set(t.settings, '{plan}', to_jsonb($2::text)), updated_at = now()
          from (select id, settings ->> 'plan' as old from tenantry.tenants where id = $1 for update) o
         where t.id = o.id returning o.old`,
        [tenant, plan],
      );
      if (!rows[0]) throw new TenantNotFoundError();
      // the new snapshot must resolve (a plan whose values the schema refuses is a deployment bug)
      snapshotOf(this.definition, { ...(await readSettingsRows(client, tenant)), plan });
      await client.query(
        `insert into tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail) values ($1, $4, $5, 'settings.plan_changed', $2, $3)`,
        [tenant, reason, { actor, from: rows[0].old, to: plan }, actorKind, actorId],
      );
      await client.query('select pg_notify($1, $2)', [this.#channel, settingsRouteOf(tenant)]);
    });
    await this.#feed?.publish(settingsRouteOf(tenant));
  }

  async #change(
    tenantId: string,
    meta: ChangeMeta,
    plan: (
      current: Record<string, unknown>,
      client: pg.PoolClient,
      head: number,
    ) =>
      | Record<string, { value: unknown; action: SettingsHistoryEntry['action'] }>
      | Promise<Record<string, { value: unknown; action: SettingsHistoryEntry['action'] }>>,
  ): Promise<SettingsChange> {
    const tenant = toTenantId(tenantId);
    const { actor, reason, actorKind, actorId } = checkMeta(meta);
    const result = await inTransaction(this.#db, async (client) => {
      const found = await client.query('select 1 from tenantry.tenants where id = $1 for key share', [tenant]);
      if (found.rows.length === 0) throw new TenantNotFoundError();
      // the head row's lock orders this tenant's writers; the number is given back on rollback
      const { rows: heads } = await client.query<{ version: string }>(
        `insert into tenantry_private.tenant_settings_heads as h (tenant_id, version) values ($1, 1)
         on conflict (tenant_id) do update set version = h.version + 1 returning version::text`,
        [tenant],
      );
      const version = Number(heads[0]!.version);
      const rows = await readSettingsRows(client, tenant);
      const changes = await plan(rows.overrides, client, version - 1);
      const keys = Object.keys(changes).sort();
      if (keys.length === 0) {
        await client.query('ROLLBACK');
        await client.query('BEGIN'); // nothing to record: the counter is not spent
        return { version: null, keys };
      }
      const next = { ...rows.overrides };
      for (const key of keys) {
        const { value } = changes[key]!;
        if (value === undefined) delete next[key];
        else next[key] = this.definition.check(key, value);
      }
      // the whole schema, with every layer: refinements across keys refuse here, nothing written
      // (stored overrides the schema now refuses are skipped, as readers skip them)
      const usable: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(next))
        if (keys.includes(key) || isAccepted(this.definition, key, value)) usable[key] = value;
      this.definition.resolve(rows.plan ?? undefined, usable);
      for (const key of keys) {
        const { value, action } = changes[key]!;
        if (value === undefined)
          await client.query('delete from tenantry_private.tenant_settings where tenant_id = $1 and key = $2', [
            tenant,
            key,
          ]);
        else
          await client.query(
            `insert into tenantry_private.tenant_settings (tenant_id, key, value, version) values ($1, $2, $3, $4)
             on conflict (tenant_id, key) do update set value = excluded.value, version = excluded.version`,
            [tenant, key, JSON.stringify(value), version],
          );
        await client.query(
          `insert into tenantry_private.tenant_settings_history (tenant_id, version, key, action, old_value, new_value, actor, reason)
           values ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            tenant,
            version,
            key,
            action,
            Object.hasOwn(rows.overrides, key) ? JSON.stringify(rows.overrides[key]) : null,
            value === undefined ? null : JSON.stringify(value),
            actor,
            reason,
          ],
        );
      }
      // the audit entry names the keys and the change, not the values (the history has them)
      await client.query(
        `insert into tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail) values ($1, $4, $5, 'settings.changed', $2, $3)`,
        [tenant, reason, { actor, version, keys }, actorKind, actorId],
      );
      await client.query('select pg_notify($1, $2)', [this.#channel, settingsRouteOf(tenant)]);
      return { version, keys };
    });
    if (result.version !== null) await this.#feed?.publish(settingsRouteOf(tenant));
    return result;
  }
}

function isAccepted(definition: SettingsDefinition, key: string, value: unknown): boolean {
  try {
    definition.check(key, value);
    return true;
  } catch {
    return false;
  }
}
