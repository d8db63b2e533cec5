import os from 'node:os';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent } from '../policy/identifiers.js';
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

/** One tenant's published figures over a time window, summed across instances. */
export interface PublishedTenantActivity {
  /** The tenant id, or '' for statements without a tenant. */
  tenantKey: string;
  dbTimeMs: number;
  statements: number;
  rows: number;
  errors: number;
  timeouts: number;
  waits: number;
  waitMs: number;
  /** Connections held now, by live instances only (a killed instance's went with it). */
  connections: number;
}

/**
 * The windows every instance published in the last `windowMinutes`, summed per tenant: what
 * `tenantry tenants top` and the console's top page show. Read as the owner or a superuser.
 */
export async function readPublishedActivity(
  db: Queryable,
  windowMinutes: number,
  intervalMs = ACTIVITY_INTERVAL_MS,
): Promise<PublishedTenantActivity[]> {
  const { rows } = await db.query<{
    tenant_key: string;
    db_time_ms: number;
    statements: string;
    rows: string;
    errors: string;
    timeouts: string;
    waits: string;
    wait_ms: number;
    connections: string;
  }>(
    `with w as (
       select * from tenantry_private.tenant_activity where window_end > now() - make_interval(mins => $1)
     ), latest as (
       select distinct on (instance, tenant_key) instance, tenant_key, connections
         from w
        -- connections held by a live instance only: a killed one's went with it
        where instance in (select instance from w group by instance
                            having max(window_end) > now() - make_interval(secs => $2))
        order by instance, tenant_key, window_end desc
     )
     select w.tenant_key, sum(db_time_ms)::float8 as db_time_ms, sum(statements) as statements, sum(rows) as rows,
            sum(errors) as errors, sum(timeouts) as timeouts, sum(waits) as waits, sum(wait_ms)::float8 as wait_ms,
            coalesce((select sum(l.connections) from latest l where l.tenant_key = w.tenant_key), 0) as connections
       from w group by w.tenant_key`,
    [windowMinutes, (2 * intervalMs) / 1000],
  );
  return rows.map((r) => ({
    tenantKey: r.tenant_key,
    dbTimeMs: Number(r.db_time_ms),
    statements: Number(r.statements),
    rows: Number(r.rows),
    errors: Number(r.errors),
    timeouts: Number(r.timeouts),
    waits: Number(r.waits),
    waitMs: Number(r.wait_ms),
    connections: Number(r.connections),
  }));
}

/** What `pg_stat_activity` shows now for one activity tag (see `activityTag`). */
export interface LiveTagActivity {
  tag: string;
  /** Backends running a statement now. */
  active: number;
  /** Backends waiting for a lock now. */
  lockWaits: number;
  /** The longest running statement's age, in ms (0 when none runs). */
  longestMs: number;
  /**
   * Backends of the tag whose state the reading role may not see (another role's backends, and
   * the reader neither a superuser nor a member of pg_read_all_stats): `active`, `lockWaits` and
   * `longestMs` do not count them. See {@link liveActivityBlindness}.
   */
  hidden: number;
}

/** Backends of tagged pools, now, per tag: the live part of `tenants top` (no extension needed). */
export async function readLiveActivity(db: Queryable): Promise<LiveTagActivity[]> {
  const { rows } = await db.query<{
    tag: string;
    active: string;
    locks: string;
    longest_ms: number | null;
    hidden: string;
  }>(
    `select application_name as tag, count(*) filter (where state = 'active') as active,
            count(*) filter (where wait_event_type = 'Lock') as locks,
            max(extract(epoch from clock_timestamp() - query_start) * 1000) filter (where state = 'active')::float8 as longest_ms,
            -- another role's backend, unreadable to this one: state, wait_event and query_start are NULL
            count(*) filter (where state is null) as hidden
       from pg_stat_activity where application_name like 'tenantry:%' group by application_name`,
  );
  return rows.map((r) => ({
    tag: r.tag,
    active: Number(r.active),
    lockWaits: Number(r.locks),
    longestMs: Math.round(r.longest_ms ?? 0),
    hidden: Number(r.hidden),
  }));
}

/**
 * When `live` (from {@link readLiveActivity}) counted backends the reading role may not see, the
 * sentence that says so and how to fix it (naming the role); `undefined` when the live figures
 * are whole. Without it, such a role reads 0 for every tenant whatever runs.
 */
export async function liveActivityBlindness(
  db: Queryable,
  live: readonly LiveTagActivity[],
): Promise<string | undefined> {
  const hidden = live.reduce((sum, l) => sum + l.hidden, 0);
  if (hidden === 0) return undefined;
  const { rows } = await db.query<{ role: string }>('select current_user as role');
  const name = rows[0]!.role;
  const role = /^[a-z_][a-z0-9_]*$/.test(name) ? name : quoteIdent(name);
  return (
    `live columns unavailable: the role ${role} cannot read other roles' activity (${hidden} backend(s) of tagged pools hidden); ` +
    `GRANT pg_read_all_stats TO ${role} (tenantry install does where it may)`
  );
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
  /**
   * How often to read whether someone watches the live activity (`tenantry_private.activity_watch`,
   * see {@link watchTenantActivity}) into `activity.watched`, which pools with `activityTag:
   * 'watched'` follow (default 2 s, at least 250 ms; one primary-key read each time).
   */
  watchPollMs?: number;
}

/** How long one call of {@link watchTenantActivity} keeps the pools tagging (s), by default. */
export const ACTIVITY_WATCH_SECONDS = 60;

/** Default of {@link PublishTenantActivityOptions.watchPollMs}. */
export const ACTIVITY_WATCH_POLL_MS = 2000;

/**
 * Says that someone watches the live activity for the next `seconds` (owner role): pools made with
 * `activityTag: 'watched'` tag their statements from their publisher's next poll (within
 * `watchPollMs`, 2 s by default) until then. `tenantry tenants top` and the console's top page
 * call it on every refresh. Resolves with whether a watch was already on (when it was not, the
 * live columns fill in only from the pools' next poll).
 *
 * @example
 * await watchTenantActivity(ownerPool); // then readLiveActivity(ownerPool) a few seconds later
 */
export async function watchTenantActivity(db: Queryable, seconds = ACTIVITY_WATCH_SECONDS): Promise<boolean> {
  if (!(Number.isInteger(seconds) && seconds >= 1 && seconds <= 3600))
    throw new ConfigurationError('watchTenantActivity: seconds must be a whole number from 1 to 3600');
  const { rows } = await db.query<{ was_on: boolean }>(
    `with before as (select until > now() as was_on from tenantry_private.activity_watch)
     insert into tenantry_private.activity_watch as w (singleton, until)
     values (true, now() + make_interval(secs => $1))
     on conflict (singleton) do update set until = greatest(w.until, excluded.until)
     returning coalesce((select b.was_on from before b), false) as was_on`,
    [seconds],
  );
  return rows[0]?.was_on === true;
}

/** Until when the live activity is watched (Date.now() ms; 0 when it is not). */
export async function readActivityWatch(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ until_ms: number | null }>(
    `select (extract(epoch from until) * 1000)::float8 as until_ms from tenantry_private.activity_watch`,
  );
  return rows[0]?.until_ms ?? 0;
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
  const watchPollMs = options.watchPollMs ?? ACTIVITY_WATCH_POLL_MS;
  // upper bounds too: past 2^31 - 1 ms a Node timer fires every millisecond instead
  if (!(watchPollMs >= 250 && watchPollMs <= 60_000))
    throw new ConfigurationError('publishTenantActivity: watchPollMs must be from 250 to 60000');
  if (!(instance.length >= 1 && instance.length <= 200))
    throw new ConfigurationError('publishTenantActivity: instance must be 1-200 characters');
  if (!(intervalMs >= 1000 && intervalMs <= 3_600_000))
    throw new ConfigurationError('publishTenantActivity: intervalMs must be from 1000 to 3600000 (1 h)');
  if (!(keepHours > 0 && keepHours <= 24 * 366))
    throw new ConfigurationError('publishTenantActivity: keepHours must be positive and at most 8784 (a year)');
  const report = (error: unknown) => {
    try {
      options.onError?.(error);
    } catch {
      // a failing error handler must not stop publishing
    }
  };
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    running = running.then(() => writeActivityWindow(ownerPool, activity, instance, keepHours)).catch(report);
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  // the watch, polled on its own (a slow window write does not delay it); one read at a time.
  // The server's clock decides `until`; a watch already past on this clock ends at once.
  let polling = false;
  let stopped = false;
  const poll = () => {
    if (polling) return;
    polling = true;
    readActivityWatch(ownerPool)
      .then(
        // a read still in flight when the publisher stops must not turn the tagging back on
        (until) => activity.watchUntil(stopped ? 0 : until),
        (error: unknown) => {
          // unknown: stop tagging rather than tag forever
          activity.watchUntil(0);
          report(error);
        },
      )
      .finally(() => {
        polling = false;
      });
  };
  const watchTimer = setInterval(poll, watchPollMs);
  watchTimer.unref();
  poll();
  return async () => {
    stopped = true;
    clearInterval(timer);
    clearInterval(watchTimer);
    activity.watchUntil(0);
    tick();
    await running;
  };
}
