import type pg from 'pg';
import type { Logger } from 'pino';
import { recordRateLimited, runAs } from 'tenantry';
import { SignInThrottle, TenantRateLimits, type RateLimitConfig, type SignInThrottleOptions } from 'tenantry/limits';
import { byPlan, DEFAULT_PLAN, PLAN_NAMES } from '../plans.js';

/** Console exports of one tenant an hour, by all staff together (whatever the tenant's plan). */
export const CONSOLE_EXPORTS_PER_HOUR = 10;

/**
 * The reference server's rate limits, by the server's plans (app/plans.ts, the one list of plan
 * names): `api` requests per minute, `export` (usage exports) and `move` operations per hour;
 * `console-export` (exports staff start from the console) an hour, the same for every plan.
 * Expensive operations fail closed when the store is down; the API fails open (an outage of the
 * counters does not stop the API).
 */
export const SERVER_LIMITS: RateLimitConfig = {
  limits: {
    api: { durationSeconds: 60, onStoreDown: 'open' },
    export: { durationSeconds: 3600, onStoreDown: 'closed' },
    move: { durationSeconds: 3600, onStoreDown: 'closed' },
    // exports started by staff from the console: their own budget, so staff never use up the
    // tenant's `export` quota (the same for every plan: it is not the tenant's to buy)
    'console-export': { durationSeconds: 3600, onStoreDown: 'closed' },
  },
  plans: byPlan((spec) => ({ ...spec.limits, 'console-export': CONSOLE_EXPORTS_PER_HOUR })),
  defaultPlan: DEFAULT_PLAN,
};

/**
 * The onboarding limit of `POST /sign-up` (each sign-up creates a tenant, and a schema or a
 * database): per e-mail at one address, per e-mail, and per address, an hour.
 */
export const SIGN_UP_THROTTLE = {
  perAccountAddress: { points: 3, durationSeconds: 3600 },
  perAccount: { points: 5, durationSeconds: 3600 },
  perAddress: { points: 20, durationSeconds: 3600 },
} as const;

/** What {@link limitsFromEnv} built: pass it as buildServer's `limits`; `close` at stop (before the pool). */
export interface ServerLimits {
  api: TenantRateLimits;
  signIn: SignInThrottle;
  staffSignIn: SignInThrottle;
  invitations: SignInThrottle;
  signUp: SignInThrottle;
  close(): Promise<void>;
}

/**
 * Rate limits of `npm start`, counted in the home database (`pool`: the owner role, closed by the
 * caller) and listening there for plan changes. A tenant whose plan the server does not know is
 * served with the default plan's limits, and a warning names the plan (at start, and once per
 * tenant when it is first served); it never stops the server.
 */
export async function limitsFromEnv(pool: pg.Pool, ownerUrl: string, logger: Logger): Promise<ServerLimits> {
  const store = { postgres: pool };
  const api = new TenantRateLimits({
    ...SERVER_LIMITS,
    store,
    catalog: pool,
    listen: { connectionString: ownerUrl },
    onLimited: (e) => {
      // a block (0 points on the tenant's plan) is not throttling: logged, not counted as rate limited
      // heard outside the request's context (the refusal is thrown before the handler): the line is
      // written in the tenant's, so it carries tenant_id as every other line of that tenant does
      if (e.blocked) {
        runAs(e.tenantId, () => logger.info({ limit: e.limit }, 'blocked by plan (0 points)'));
        return;
      }
      // tenantry_tenant_rate_limited_total (when the metrics are installed; nothing otherwise)
      recordRateLimited(e.tenantId);
      runAs(e.tenantId, () => logger.info({ limit: e.limit, storeDown: e.storeDown }, 'rate limited'));
    },
    onStoreError: (e) =>
      logger.warn(
        { limit: e.limit, policy: e.policy, err: { message: (e.error as Error).message } },
        'rate limit store',
      ),
    // written in the tenant's context (the catalog's id, not a caller's claim), like the lines above:
    // a tenant_id in the logged object would be written as claimed_tenant_id (docs/logging.md, Fields)
    onBadTenantSettings: (e) =>
      runAs(e.tenantId, () => logger.warn({ problem: e.problem }, 'tenant rate limit settings')),
    onUnknownPlans: (e) =>
      logger.warn(
        { plans: e.plans, defaultPlan: e.defaultPlan, known: PLAN_NAMES },
        `tenants have plans this server does not know: they get the ${e.defaultPlan} plan's limits`,
      ),
  });
  // one warning per process, whichever throttle meets it first
  let warnedProxy = false;
  const onUntrustedProxy = () => {
    if (warnedProxy) return;
    warnedProxy = true;
    logger.warn(
      'X-Forwarded-For arrived but trustProxy is off: behind a proxy every client has the address of the proxy, so the ' +
        'sign-in throttles count all users as one address (set TENANTRY_TRUST_PROXY; see docs/rate-limits.md)',
    );
  };
  const throttle = (name: string, windows: Partial<SignInThrottleOptions> = {}) =>
    new SignInThrottle({
      store,
      name,
      ...windows,
      onLimited: (e) => logger.info({ throttle: e.throttle, scope: e.scope }, 'sign-in throttled'),
      onStoreError: (error) => logger.warn({ err: { message: (error as Error).message } }, 'sign-in throttle store'),
      onUntrustedProxy,
    });
  try {
    await api.start();
  } catch (error) {
    await api.close();
    throw error;
  }
  return {
    api,
    signIn: throttle('sign-in'),
    staffSignIn: throttle('staff-sign-in'),
    invitations: throttle('invitation-accept'),
    signUp: throttle('sign-up', SIGN_UP_THROTTLE),
    close: () => api.close(),
  };
}
