import type pg from 'pg';
import type { Logger } from 'pino';
import { SignInThrottle, TenantRateLimits, type RateLimitConfig } from 'tenantry/limits';

/**
 * The reference server's plans (the same names as sign-up's and the placement policy's): `api`
 * requests per minute, `export` and `move` operations per hour. Expensive operations fail closed
 * when the store is down; the API fails open (an outage of the counters does not stop the API).
 */
export const SERVER_LIMITS: RateLimitConfig = {
  limits: {
    api: { durationSeconds: 60, onStoreDown: 'open' },
    export: { durationSeconds: 3600, onStoreDown: 'closed' },
    move: { durationSeconds: 3600, onStoreDown: 'closed' },
  },
  plans: {
    free: { api: 600, export: 2, move: 1 },
    business: { api: 6000, export: 20, move: 5 },
    enterprise: { api: 60000, export: 100, move: 20 },
  },
  defaultPlan: 'free',
};

/** What {@link limitsFromEnv} built: pass `api`, `signIn`, `staffSignIn` to buildServer; `close` at stop (before the pool). */
export interface ServerLimits {
  api: TenantRateLimits;
  signIn: SignInThrottle;
  staffSignIn: SignInThrottle;
  close(): Promise<void>;
}

/**
 * Rate limits of `npm start`, counted in the home database (`pool`: the owner role, closed by the
 * caller) and listening there for plan changes. A plan in the catalog that SERVER_LIMITS does not
 * know stops the start with CONFIGURATION_ERROR.
 */
export async function limitsFromEnv(pool: pg.Pool, ownerUrl: string, logger: Logger): Promise<ServerLimits> {
  const store = { postgres: pool };
  const api = new TenantRateLimits({
    ...SERVER_LIMITS,
    store,
    catalog: pool,
    listen: { connectionString: ownerUrl },
    onLimited: (e) => logger.info({ limit: e.limit, storeDown: e.storeDown }, 'rate limited'),
    onStoreError: (e) =>
      logger.warn(
        { limit: e.limit, policy: e.policy, err: { message: (e.error as Error).message } },
        'rate limit store',
      ),
    onBadTenantSettings: (e) => logger.warn({ problem: e.problem }, 'tenant rate limit settings'),
  });
  const throttle = (name: string) =>
    new SignInThrottle({
      store,
      name,
      onLimited: (e) => logger.info({ throttle: e.throttle, scope: e.scope }, 'sign-in throttled'),
      onStoreError: (error) => logger.warn({ err: { message: (error as Error).message } }, 'sign-in throttle store'),
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
    close: () => api.close(),
  };
}
