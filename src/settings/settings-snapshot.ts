import type { Queryable } from '../catalog/tenant-catalog.js';
import { TenantNotFoundError } from '../errors/tenantry-error.js';
import type { SettingsDefinition, SettingSource, SettingsSchema } from './settings-definition.js';
import type { z } from 'zod';

/** A tenant's resolved settings, as cached and as `explain` shows them. */
export interface SettingsSnapshot<S extends SettingsSchema = SettingsSchema> {
  values: Readonly<z.output<S>>;
  sources: Readonly<Record<string, SettingSource>>;
  plan: string | null;
  /** The tenant's last change number (0: never changed). */
  version: number;
  /** Stored overrides the schema no longer accepts (a key removed, a stricter type): skipped. */
  ignored: readonly string[];
}

/** The rows of one tenant's settings: its plan, its overrides, its last change number. */
export interface SettingsRows {
  plan: string | null;
  overrides: Record<string, unknown>;
  version: number;
}

/** Reads one tenant's plan, overrides and change number in one statement (TENANT_NOT_FOUND when it does not exist). */
export async function readSettingsRows(db: Queryable, tenantId: string): Promise<SettingsRows> {
  const { rows } = await db.query<{ plan: string | null; overrides: Record<string, unknown>; version: string | null }>(
    `select t.settings ->> 'plan' as plan,
            coalesce((select jsonb_object_agg(s.key, s.value) from tenantry_private.tenant_settings s where s.tenant_id = t.id), '{}') as overrides,
            (select h.version from tenantry_private.tenant_settings_heads h where h.tenant_id = t.id)::text as version
       from tenantry.tenants t where t.id = $1`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) throw new TenantNotFoundError();
  return { plan: row.plan, overrides: row.overrides, version: Number(row.version ?? 0) };
}

/** Resolves rows against the definition, skipping stored overrides the schema now refuses. */
export function snapshotOf<S extends SettingsSchema>(
  definition: SettingsDefinition<S>,
  rows: SettingsRows,
): SettingsSnapshot<S> {
  const usable: Record<string, unknown> = {};
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(rows.overrides)) {
    try {
      usable[key] = definition.check(key, value);
    } catch {
      ignored.push(key);
    }
  }
  const { values, sources } = definition.resolve(rows.plan ?? undefined, usable);
  return Object.freeze({ values, sources, plan: rows.plan, version: rows.version, ignored: Object.freeze(ignored) });
}
