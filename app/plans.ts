import type { DbLimits } from 'tenantry';

/**
 * The reference server's plans: the ONE list of plan names. Rate limits (app/limits), database
 * limits and fair-share weights (app/observe/monitoring.ts), settings and flags
 * (app/settings/definition.ts) and sign-up (app/signup) all take their names from here, so a
 * plan one of them knows is a plan every one of them knows.
 *
 * A tenant whose `settings.plan` is none of these (written by hand, or by an older version) is
 * served with {@link DEFAULT_PLAN}'s limits, and a warning says so: it never stops the server.
 */
export const PLAN_NAMES = ['free', 'business', 'enterprise'] as const;

/** One of {@link PLAN_NAMES}. */
export type PlanName = (typeof PLAN_NAMES)[number];

/** The plan of a tenant with none, or with a plan this server does not know: the most restrictive. */
export const DEFAULT_PLAN: PlanName = 'free';

/** The plans a public sign-up may choose (`enterprise` is an operator's decision: `tenants onboard --plan`). */
export const SIGN_UP_PLANS = ['free', 'business'] as const satisfies readonly PlanName[];

/** What each plan gets. */
export interface PlanSpec {
  /** Rate limits: API requests a minute, usage exports and moves an hour. */
  limits: { api: number; export: number; move: number };
  /** Per-tenant database limits and the weight of its share of connections (fair checkout). */
  db: DbLimits;
  /** Settings that differ from the defaults on this plan (app/settings/definition.ts). */
  settings?: { maxRecordingMinutes?: number; recordingRetentionDays?: number };
  /** Whether the plan includes automatic transcripts (the `transcripts` flag). */
  transcripts: boolean;
}

export const PLANS: Readonly<Record<PlanName, PlanSpec>> = Object.freeze({
  free: {
    limits: { api: 600, export: 2, move: 1 },
    db: { statementTimeoutMs: 5_000, lockTimeoutMs: 1_000, workMem: '4MB', weight: 1 },
    transcripts: false,
  },
  business: {
    limits: { api: 6_000, export: 20, move: 5 },
    db: { statementTimeoutMs: 15_000, lockTimeoutMs: 2_000, workMem: '16MB', weight: 4 },
    settings: { maxRecordingMinutes: 240, recordingRetentionDays: 365 },
    transcripts: true,
  },
  enterprise: {
    limits: { api: 60_000, export: 100, move: 20 },
    db: { statementTimeoutMs: 30_000, lockTimeoutMs: 5_000, workMem: '64MB', weight: 8 },
    settings: { maxRecordingMinutes: 600, recordingRetentionDays: 3650 },
    transcripts: true,
  },
});

/** Whether `plan` is one of this server's plans. */
export function isPlanName(plan: unknown): plan is PlanName {
  return typeof plan === 'string' && (PLAN_NAMES as readonly string[]).includes(plan);
}

/** `{ [plan]: pick(spec) }` for every plan (a helper for the configurations built from {@link PLANS}). */
export function byPlan<T>(pick: (spec: PlanSpec, plan: PlanName) => T | undefined): Record<string, T> {
  const out: Record<string, T> = {};
  for (const plan of PLAN_NAMES) {
    const value = pick(PLANS[plan], plan);
    if (value !== undefined) out[plan] = value;
  }
  return out;
}
