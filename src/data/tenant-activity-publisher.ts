import os from 'node:os';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { TenantActivity } from './tenant-activity.js';

/** The default length of a published window (see {@link publishTenantActivity}). */
export const ACTIVITY_INTERVAL_MS = 15_000;

/** Instances that published in a time window: `live` ones within the last two intervals, the others `stale`. */
export interface PublishingInstances {
  live: number;
  /** Published in the window but not in the last two intervals: stopped (killed), or idle since. */
  stale: number;
}

/**
 * How many instances published windows in the last `windowMinutes`, split into live (a window
 * ended within `2 × intervalMs`) and stale ones: a killed instance stays in the window until it
 * ages out, and must not be counted as running (nor its held connections).
 */
export async function publishingInstances(
  db: Queryable,
  windowMinutes: number,
  intervalMs = ACTIVITY_INTERVAL_MS,
): Promise<PublishingInstances> {
  const { rows } = await db.query<{ live: string; stale: string }>(
    `select count(*) filter (where last > now() - make_interval(secs => $2)) as live,
            count(*) filter (where last <= now() - make_interval(secs => $2)) as stale
       from (select instance, max(window_end) as last from tenantry_private.tenant_activity
              where window_end > now() - make_interval(mins => $1) group by instance) i`,
    [windowMinutes, (2 * intervalMs) / 1000],
  );
  return { live: Number(rows[0]?.live ?? 0), stale: Number(rows[0]?.stale ?? 0) };
}

/** Options of {@link publishTenantActivity}. */
export interface PublishTenantActivityOptions {
  /** This process's name in the table (default `<hostname>:<pid>`), 1-200 characters. */
  instance?: string;
  /** Length of a window (default 15 s, at least 1 s). */
  intervalMs?: number;
  /** Windows older than this are deleted as new ones are written (default 48 h). */
  keepHours?: number;
  /** A failed write: that window's figures are dropped (monitoring, not billing), the next is tried. */
  onError?: (error: unknown) => void;
}

const INSERT = `insert into tenantry_private.tenant_activity
  (instance, tenant_key, window_start, window_end, db_time_ms, statements, rows, errors, timeouts,
   checkouts, waits, wait_ms, connections)
  select $1, t.k, to_timestamp($2::double precision / 1000), to_timestamp($3::double precision / 1000),
         t.db, t.st, t.r, t.e, t.tmo, t.c, t.w, t.wm, t.conn
    from unnest($4::text[], $5::float8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[],
                $11::int8[], $12::float8[], $13::int4[]) as t(k, db, st, r, e, tmo, c, w, wm, conn)
  on conflict (instance, tenant_key, window_start) do nothing`;

/** Writes one window of `activity` (one statement) and deletes windows past `keepHours`. */
export async function writeActivityWindow(
  db: Queryable,
  activity: TenantActivity,
  instance: string,
  keepHours = 48,
): Promise<number> {
  const { since, until, rows } = activity.take();
  if (rows.length > 0) {
    await db.query(INSERT, [
      instance,
      since,
      until,
      rows.map((r) => r.tenantId),
      rows.map((r) => r.dbTimeMs),
      rows.map((r) => r.statements),
      rows.map((r) => r.rows),
      rows.map((r) => r.errors),
      rows.map((r) => r.timeouts),
      rows.map((r) => r.checkouts),
      rows.map((r) => r.waits),
      rows.map((r) => r.waitMs),
      rows.map((r) => r.connections),
    ]);
  }
  await db.query(`delete from tenantry_private.tenant_activity where window_end < now() - make_interval(hours => $1)`, [
    keepHours,
  ]);
  return rows.length;
}

/**
 * Publishes a TenantActivity every `intervalMs` to `tenantry_private.tenant_activity` through an
 * owner pool (the app role cannot write it), where `tenantry tenants top` reads every instance's
 * figures. Returns a function that stops it and writes the last window.
 *
 * @example
 * const activity = new TenantActivity();
 * const pool = new TenantPool({ connectionString, contextSecret, activity, activityTag: true });
 * const stop = publishTenantActivity(activity, ownerPool);
 * // on shutdown: await stop();
 */
export function publishTenantActivity(
  activity: TenantActivity,
  ownerPool: Queryable,
  options: PublishTenantActivityOptions = {},
): () => Promise<void> {
  const instance = options.instance ?? `${os.hostname()}:${process.pid}`;
  const intervalMs = options.intervalMs ?? ACTIVITY_INTERVAL_MS;
  const keepHours = options.keepHours ?? 48;
  if (!(instance.length >= 1 && instance.length <= 200))
    throw new ConfigurationError('publishTenantActivity: instance must be 1-200 characters');
  if (!(intervalMs >= 1000)) throw new ConfigurationError('publishTenantActivity: intervalMs must be at least 1000');
  if (!(keepHours > 0)) throw new ConfigurationError('publishTenantActivity: keepHours must be positive');
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = running
      .then(() => writeActivityWindow(ownerPool, activity, instance, keepHours))
      .catch((error: unknown) => {
        try {
          options.onError?.(error);
        } catch {
          // a failing error handler must not stop publishing
        }
      });
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return async () => {
    clearInterval(timer);
    tick();
    await running;
  };
}
