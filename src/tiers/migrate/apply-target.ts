import type pg from 'pg';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { quoteIdent, quoteLiteral } from '../../policy/identifiers.js';
import type { TargetFailure } from './database-state.js';
import { MigrationError } from './migration-error.js';
import type { Migration } from './migration-files.js';
import type { TargetPlan } from './migration-plan.js';

/**
 * What one target's transaction did: the migrations it ran (`applied`) and those it recorded
 * without running (`baselined`, see {@link ApplyTargetOptions.baselineThrough}), in version order.
 */
export type TargetOutcome =
  | { ok: true; applied: Migration[]; baselined: Migration[]; version: number | null }
  | { ok: false; failure: TargetFailure; version: number | null };

/** Options of {@link applyTarget}. */
export interface ApplyTargetOptions {
  /** `lock_timeout` of the transaction, in ms, set after the advisory lock (default: the server's). */
  lockTimeoutMs?: number;
  /**
   * A baseline: the missing migrations with a version <= this are recorded as applied WITHOUT
   * running their SQL (the target already has their objects), in the same transaction and under
   * the same lock as the others, which then run normally. Default: none.
   */
  baselineThrough?: number;
}

/**
 * Applies a target's missing migrations (those in `migrations`, in order) in ONE transaction:
 * all of them, or none. Under a per-target advisory lock, it re-reads what is applied (a
 * concurrent run may just have done the work: then it does nothing), runs as the owner role with
 * the target's search path set transaction-locally, and records the versions in the same
 * transaction. Bookkeeping rides with the first and last statements: 2 round trips plus one per
 * migration. A failure rolls everything back and is recorded in `tenantry.migration_failures`.
 *
 * A schema target's new tables get their schema's tenant guard (`tenantry.guard_tenant_schema`)
 * in the same transaction. A schema target's schema must exist: otherwise PostgreSQL would create its tables in the next
 * schema of the search path (a data schema), so the target fails instead (SQLSTATE 3F000).
 */
export async function applyTarget(
  client: pg.ClientBase,
  plan: TargetPlan,
  migrations: Migration[],
  options: ApplyTargetOptions = {},
): Promise<TargetOutcome> {
  const lit = quoteLiteral;
  // after the advisory lock: waiting for another run is fine; queueing behind the app's locks is not
  const lockTimeout =
    options.lockTimeoutMs === undefined
      ? ''
      : `SELECT set_config('lock_timeout', ${lit(`${Math.max(1, Math.floor(options.lockTimeoutMs))}ms`)}, true);`;
  // a missing schema fails the cast (3F000) before anything runs
  const schemaExists =
    plan.target.schema === null ? '' : `SELECT ${lit(quoteIdent(plan.target.schema, 'schema'))}::regnamespace;`;
  const baselineThrough = options.baselineThrough ?? -1;
  // until the re-read under the lock: what the plan saw (the version reported if the opening fails)
  const done = new Map<number, { version: number; name: string; checksum: string }>(
    plan.applied.map((a) => [a.version, a]),
  );
  const version = (): number | null => (done.size === 0 ? null : Math.max(...done.keys()));
  let current: Migration | null = null;
  try {
    const opening = (await client.query(
      `BEGIN;
       SELECT pg_advisory_xact_lock(hashtext('tenantry.migrate'), hashtext(${lit(plan.target.key)}));
       SET LOCAL ROLE ${quoteIdent(plan.ownerRole, 'role')};
       ${lockTimeout}
       ${schemaExists}
       SELECT set_config('search_path', ${lit(plan.searchPath.map((s) => quoteIdent(s, 'schema')).join(', '))}, true);
       SELECT version, name, checksum FROM tenantry.schema_migrations WHERE target = ${lit(plan.tracking)} ORDER BY version`,
    )) as unknown as pg.QueryResult[];
    done.clear();
    for (const r of opening.at(-1)!.rows as Array<{ version: number; name: string; checksum: string }>)
      done.set(r.version, r);
    for (const m of plan.migrations) {
      const a = done.get(m.version);
      if (a && (a.checksum !== m.checksum || a.name !== m.name)) {
        throw new MigrationError(
          'MIGRATION_CHANGED',
          `${m.scope}/${m.name} changed after ${plan.target.key} applied it`,
          { target: plan.target.key, migration: m.name },
        );
      }
    }
    const todo = migrations.filter((m) => !done.has(m.version));
    const baselined = todo.filter((m) => m.version <= baselineThrough);
    const applied = todo.filter((m) => m.version > baselineThrough);
    for (const m of applied) {
      current = m;
      await client.query(m.sql);
    }
    current = null;
    // a tenant schema's new tables refuse other tenants' rows too (tiers/003: tenantry.guard_tenant_schema)
    const guard =
      plan.target.schema === null || applied.length === 0
        ? ''
        : `DO $guard$ BEGIN IF to_regprocedure('tenantry.guard_tenant_schema(text)') IS NOT NULL THEN PERFORM tenantry.guard_tenant_schema(${lit(plan.target.schema)}); END IF; END $guard$;`;
    const values = todo.map(
      (m) => `(${lit(plan.tracking)}, ${m.version}, ${lit(m.name)}, ${lit(m.scope)}, ${lit(m.checksum)})`,
    );
    await client.query(
      `${guard}
       ${values.length ? `INSERT INTO tenantry.schema_migrations (target, version, name, scope, checksum) VALUES ${values.join(', ')};` : ''}
       DELETE FROM tenantry.migration_failures WHERE target = ${lit(plan.tracking)};
       COMMIT; RESET ALL;`,
    );
    for (const m of todo) done.set(m.version, m);
    return { ok: true, applied, baselined, version: version() };
  } catch (error) {
    await client.query('ROLLBACK; RESET ALL').catch(() => undefined);
    const code = (error as { code?: unknown }).code;
    const failure: TargetFailure = {
      version: current?.version ?? null,
      migration: current?.name ?? null,
      sqlstate: sqlStateOf(error) ?? (typeof code === 'string' ? code : null),
      message: (error as Error).message,
    };
    await client
      .query(
        `INSERT INTO tenantry.migration_failures (target, version, name, sqlstate, message) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (target) DO UPDATE SET version = excluded.version, name = excluded.name, sqlstate = excluded.sqlstate,
           message = excluded.message, failed_at = now()`,
        [plan.tracking, failure.version, failure.migration, failure.sqlstate, failure.message],
      )
      .catch(() => undefined);
    return { ok: false, failure, version: version() };
  }
}
