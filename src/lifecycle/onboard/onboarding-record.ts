import type { Queryable } from '../../catalog/tenant-catalog.js';
import type { PlacementTarget } from '../../tiers/placements.js';

/**
 * The steps of an onboarding, in order. `create` makes the catalog row and decides the placement
 * (one transaction); `provision` creates the schema or database; `migrate` applies the
 * application's migrations there; `route` switches the tenant's route to it; `seed` runs the
 * application's seed hook; `invite` issues (and delivers) the first owner's invitation; `done`
 * closes the record and writes the audit entry. Steps a tenant does not need (provision, migrate
 * and route in the shared tier of the home cluster; seed or invite without a hook or an owner)
 * are not part of its plan.
 */
export const ONBOARD_STEPS = ['create', 'provision', 'migrate', 'route', 'seed', 'invite', 'done'] as const;

/** One step of an onboarding. */
export type OnboardStep = (typeof ONBOARD_STEPS)[number];

/** An onboarding as `tenantry.onboardings` records it. */
export interface OnboardingRecord {
  tenantId: string;
  slug: string;
  name: string;
  plan: string | null;
  ownerEmail: string | null;
  target: PlacementTarget;
  /** Completed steps and when. */
  steps: Partial<Record<OnboardStep, string>>;
  attempts: number;
  lastError: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

interface Row {
  tenant_id: string;
  slug: string;
  name: string;
  plan: string | null;
  owner_email: string | null;
  target: PlacementTarget;
  steps: Partial<Record<OnboardStep, string>>;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  completed_at: Date | null;
}

const COLUMNS =
  'tenant_id, slug, name, plan, owner_email, target, steps, attempts, last_error, created_at, completed_at';

function fromRow(r: Row): OnboardingRecord {
  return {
    tenantId: r.tenant_id,
    slug: r.slug,
    name: r.name,
    plan: r.plan,
    ownerEmail: r.owner_email,
    target: r.target,
    steps: r.steps,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: r.created_at,
    completedAt: r.completed_at,
  };
}

/** The onboarding record of a slug (home database, owner role), or undefined. */
export async function findOnboarding(db: Queryable, slug: string): Promise<OnboardingRecord | undefined> {
  const { rows } = await db.query<Row>(`select ${COLUMNS} from tenantry.onboardings where slug = $1`, [slug]);
  return rows[0] ? fromRow(rows[0]) : undefined;
}

/** Writes the record of a tenant just created (in the transaction that created it). */
export async function insertOnboarding(
  db: Queryable,
  record: Pick<OnboardingRecord, 'tenantId' | 'slug' | 'name' | 'plan' | 'ownerEmail' | 'target'>,
): Promise<OnboardingRecord> {
  const { rows } = await db.query<Row>(
    `insert into tenantry.onboardings (tenant_id, slug, name, plan, owner_email, target, steps)
     values ($1, $2, $3, $4, $5, $6, jsonb_build_object('create', now())) returning ${COLUMNS}`,
    [record.tenantId, record.slug, record.name, record.plan, record.ownerEmail, JSON.stringify(record.target)],
  );
  return fromRow(rows[0]!);
}

/** Records completed steps (one statement: a crash records all of them or none); answers `completed_at`. */
export async function recordSteps(db: Queryable, tenantId: string, steps: OnboardStep[]): Promise<Date | null> {
  const { rows } = await db.query<{ completed_at: Date | null }>(
    `update tenantry.onboardings
        set steps = steps || (select jsonb_object_agg(s, now()) from unnest($2::text[]) as s),
            last_error = null, updated_at = now(),
            completed_at = case when 'done' = any($2::text[]) then now() else completed_at end
      where tenant_id = $1 returning completed_at`,
    [tenantId, steps],
  );
  return rows[0]?.completed_at ?? null;
}

/** A new attempt of an unfinished onboarding; the owner's email when this run gives the first one. */
export async function recordAttempt(db: Queryable, tenantId: string, ownerEmail: string | null): Promise<void> {
  await db.query(
    `update tenantry.onboardings set attempts = attempts + 1, owner_email = coalesce(owner_email, $2), updated_at = now()
      where tenant_id = $1`,
    [tenantId, ownerEmail],
  );
}

/** Why the last attempt stopped (bounded; no secrets: the step's error message only). */
export async function recordFailure(db: Queryable, tenantId: string, message: string): Promise<void> {
  await db.query(
    `update tenantry.onboardings set last_error = left($2, 2000), updated_at = now() where tenant_id = $1`,
    [tenantId, message],
  );
}
