import type pg from 'pg';
import type { Logger } from 'pino';
import { publishTenantActivity, TenantActivity, TenantDbLimits } from 'tenantry';
import { byPlan, DEFAULT_PLAN, isPlanName, PLAN_NAMES } from '../plans.js';

/** The reference server's monitoring and noisy-neighbour settings, read from its environment. */
export interface MonitoringSettings {
  /** Per-tenant activity counted by the pools and published for `tenantry tenants top` (TENANTRY_ACTIVITY). */
  activity: boolean;
  /** How often this instance publishes its window (TENANTRY_ACTIVITY_INTERVAL_S, 1 … 3600, default 15). */
  intervalMs: number;
  /** Per-tenant statement_timeout, lock_timeout, work_mem by plan (TENANTRY_DB_LIMITS). */
  dbLimits: boolean;
  /** Connections shared fairly between tenants, weighted by plan (TENANTRY_FAIR_CHECKOUT). */
  fairCheckout: boolean;
}

const onOff = (env: NodeJS.ProcessEnv, name: string): boolean => {
  const value = env[name]?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'on') return true;
  if (value === 'off') return false;
  throw new Error(`${name} must be on or off (got ${JSON.stringify(env[name])})`);
};

/**
 * Reads the monitoring settings; a bad value stops the start with the variable's name:
 *
 * - `TENANTRY_ACTIVITY` (`on` / `off`, default on): the pools count DB time, statements, rows,
 *   errors, waits and connections per tenant, tag their backends in `pg_stat_activity`
 *   (`application_name` `tenantry:<hash>`, never the tenant id) and publish every
 *   `TENANTRY_ACTIVITY_INTERVAL_S` seconds (default 15) to the home database, where
 *   `tenantry tenants top` reads them.
 * - `TENANTRY_DB_LIMITS` (default on): each tenant's statements run with its plan's
 *   `statement_timeout`, `lock_timeout` and `work_mem` (app/plans.ts).
 * - `TENANTRY_FAIR_CHECKOUT` (default on): a tenant cannot hold more than its share of a pool's
 *   connections while others wait (weights by plan).
 */
export function monitoringFromEnv(env: NodeJS.ProcessEnv = process.env): MonitoringSettings {
  const activity = onOff(env, 'TENANTRY_ACTIVITY');
  const dbLimits = onOff(env, 'TENANTRY_DB_LIMITS');
  const fairCheckout = onOff(env, 'TENANTRY_FAIR_CHECKOUT');
  const interval = env.TENANTRY_ACTIVITY_INTERVAL_S?.trim();
  let intervalMs = 15_000;
  if (interval !== undefined && interval !== '') {
    if (!/^\d{1,4}$/.test(interval) || Number(interval) < 1 || Number(interval) > 3600)
      throw new Error(
        `TENANTRY_ACTIVITY_INTERVAL_S must be a whole number of seconds from 1 to 3600 (got "${interval}")`,
      );
    intervalMs = Number(interval) * 1000;
  }
  return { activity, intervalMs, dbLimits, fairCheckout };
}

/** What {@link startMonitoring} made: spread `poolOptions` into the app's pools; `stop` at shutdown (before the owner pool ends). */
export interface Monitoring {
  settings: MonitoringSettings;
  activity?: TenantActivity;
  dbLimits?: TenantDbLimits;
  /** `activity`, `activityTag`, `dbLimits`, `fairCheckout` for a TenantPool or a RoutedTenantPool. */
  poolOptions: {
    activity?: TenantActivity;
    activityTag?: boolean | 'watched';
    dbLimits?: TenantDbLimits;
    fairCheckout?: boolean;
  };
  /** Stops reloading plans and publishing, and writes the last window. */
  stop(): Promise<void>;
}

/**
 * Starts the server's per-tenant monitoring and database limits on `ownerPool` (the home
 * database as the owner role: it reads the tenants' plans and writes the activity windows).
 * Plans are loaded before the first request; a tenant whose plan the server does not know gets
 * the default plan's limits, and a warning names the plan.
 */
export async function startMonitoring(
  ownerPool: pg.Pool,
  logger: Logger,
  settings: MonitoringSettings = monitoringFromEnv(),
): Promise<Monitoring> {
  const stops: Array<() => unknown> = [];
  let activity: TenantActivity | undefined;
  let dbLimits: TenantDbLimits | undefined;
  if (settings.dbLimits || settings.fairCheckout) {
    // the weights of fair checkout come from the plans too (weight 1 for every plan without db limits)
    dbLimits = new TenantDbLimits({
      plans: byPlan((spec) => (settings.dbLimits ? { ...spec.db } : { weight: spec.db.weight ?? 1 })),
      defaultPlan: DEFAULT_PLAN,
    });
    await dbLimits.load(ownerPool);
    await warnUnknownPlans(ownerPool, logger);
    const limits = dbLimits;
    stops.push(
      limits.watch(ownerPool, {
        onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'database limits: reloading plans'),
      }),
    );
  }
  if (settings.activity) {
    activity = new TenantActivity();
    const stopPublishing = publishTenantActivity(activity, ownerPool, {
      intervalMs: settings.intervalMs,
      onError: (err) =>
        logger.warn({ err: { message: (err as Error).message } }, 'tenant activity: a window was dropped'),
    });
    stops.push(stopPublishing);
  }
  return {
    settings,
    ...(activity ? { activity } : {}),
    ...(dbLimits ? { dbLimits } : {}),
    poolOptions: {
      // tagged only while someone watches (tenants top, the console's top page): the tag's cost per
      // statement is paid then only; the publisher polls the watch
      ...(activity ? { activity, activityTag: 'watched' as const } : {}),
      ...(dbLimits ? { dbLimits } : {}),
      ...(settings.fairCheckout ? { fairCheckout: true } : {}),
    },
    async stop() {
      // the publisher's last window last: it is the one that writes
      for (const stop of stops.reverse()) await stop();
    },
  };
}

/** One warning at start for the plans in the catalog the server does not know (their tenants get the default plan). */
async function warnUnknownPlans(ownerPool: pg.Pool, logger: Logger): Promise<void> {
  const { rows } = await ownerPool.query<{ plan: unknown; tenants: number }>(
    `select settings -> 'plan' as plan, count(*)::int as tenants from tenantry.tenants
      where status <> 'deleted' and settings ? 'plan' group by 1`,
  );
  const unknown = rows.filter((r) => !isPlanName(r.plan));
  if (unknown.length > 0)
    logger.warn(
      { plans: unknown, known: PLAN_NAMES, defaultPlan: DEFAULT_PLAN },
      `database limits: tenants have plans this server does not know: they get the ${DEFAULT_PLAN} plan's limits`,
    );
}
