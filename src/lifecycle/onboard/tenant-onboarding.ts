import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { TenantCatalog, withTenantLock, writeTenantHold, type Queryable } from '../../catalog/tenant-catalog.js';
import { tenantFromRow, type Tenant, type TenantRow } from '../../catalog/tenant.js';

const TENANT_COLUMNS = 'id, slug, name, status, placement, settings, created_at, updated_at, suspended_at, deleted_at';
import { runAs } from '../../context/tenant-context.js';
import { sqlStateOf, SqlState } from '../../errors/sqlstate.js';
import { ConfigurationError, TenantryError } from '../../errors/tenantry-error.js';
import type { InstallRunOptions } from '../../policy/installer.js';
import { migrateLocation } from '../../tiers/migrate/migrate-location.js';
import { loadMigrations, type Migration } from '../../tiers/migrate/migration-files.js';
import {
  clusterTenantsSql,
  placementQuestion,
  planPlacementPolicy,
  type ClusterLoad,
  type PlacementPolicy,
} from '../../tiers/placement-policy.js';
import { Placements, type PlacementTarget } from '../../tiers/placements.js';
import { createTenantDatabase, createTenantSchema } from '../../tiers/provision.js';
import { inviteOwner, type OwnerInvitation, type OwnerInvitationOptions } from './invite-owner.js';
import { parseOnboardInput, type OnboardInput } from './onboard-input.js';
import { OnboardingError } from './onboarding-error.js';
import {
  findOnboarding,
  insertOnboarding,
  ONBOARD_STEPS,
  recordAttempt,
  recordFailure,
  recordSteps,
  type OnboardingRecord,
  type OnboardStep,
} from './onboarding-record.js';

/** What the application's seed hook gets (it runs inside `runAs(tenant)`). */
export interface OnboardContext {
  tenant: Tenant;
  target: PlacementTarget;
  /** 1 on the first attempt; more when an earlier attempt stopped (at this step or before). */
  attempt: number;
}

/** Told before a step runs (`started`), after its work (`applied`) and once it is recorded (`recorded`). */
export interface OnboardStepEvent {
  slug: string;
  tenantId: string | null;
  step: OnboardStep;
  phase: 'started' | 'applied' | 'recorded';
}

/** Options of {@link TenantOnboarding} and {@link onboardTenant}. */
export interface TenantOnboardingOptions {
  /** The home database (catalog, placements, onboarding records) as the owner role. */
  catalog: pg.Pool;
  /** Each cluster's shared database as the owner role: `{ home: ownerUrl, eu: … }`. */
  owners: Record<string, string>;
  /** Each cluster's superuser URL, where the database tier may create tenant databases. */
  admins?: Record<string, string>;
  /** The deployment's roles, passwords and context secret: a new tenant database is installed with them. */
  install?: InstallRunOptions;
  /** Where a new tenant goes (default `planPlacementPolicy()`: enterprise → database, business → schema, else shared). */
  policy?: PlacementPolicy;
  /**
   * The application's migrations (`global/`, `tenant/`, as `tenantry migrate` takes them), applied
   * to a new schema or database. The shared tier's tables are the cluster's (`tenantry migrate`).
   */
  migrations?: string | Migration[];
  /**
   * Seeds the tenant's defaults, inside `runAs(tenant)`. Runs at least once: after a crash between
   * its commit and the step's record it runs again, so write it idempotently (`on conflict do nothing`).
   */
  seed?: (context: OnboardContext) => Promise<void>;
  /** Inviting the first owner (needed when an onboarding names `ownerEmail`). */
  invitations?: OwnerInvitationOptions;
  /**
   * Progress, step by step (a CLI prints it; tests stop a process at a given step). A plan of
   * `create` and `done` only is one statement: `create:started` is told before it (also for a slug
   * that turns out onboarded already), the other events once it committed.
   */
  onStep?: (event: OnboardStepEvent) => void | Promise<void>;
  /** How long a second onboarding of the same slug waits for the first (default 10,000 ms): then ONBOARDING_BUSY. */
  lockWaitMs?: number;
  /** The cluster of tenants without a placement (default `home`). */
  homeCluster?: string;
}

/** How an onboarding call ended. */
export interface OnboardResult {
  tenant: Tenant;
  target: PlacementTarget;
  /** `onboarded`: this call did it all; `resumed`: it finished an earlier attempt; `already-onboarded`: nothing to do. */
  outcome: 'onboarded' | 'resumed' | 'already-onboarded';
  /** Steps this call ran. */
  ran: OnboardStep[];
  /** Steps earlier attempts had recorded (not run again). */
  skipped: OnboardStep[];
  /** The owner's invitation, when this call ran the invite step. */
  invitation?: OwnerInvitation;
  attempts: number;
  completedAt: Date | null;
}

const LOCK_NAMESPACE = 'tenantry.onboard';
/**
 * How long the one-step path reuses its view of the clusters (status, capacity, tenant counts):
 * a cluster drained or disabled is seen within this bound (the bound every instance has for a
 * tenant's status), and a load a second old, plus this process's own placements since, is as
 * good for balancing.
 */
const CLUSTER_VIEW_TTL_MS = 1000;

/**
 * Onboarding in one step: creates the tenant, places it by the placement policy, provisions its
 * schema or database, applies the application's migrations there, switches its route, seeds its
 * defaults and invites its first owner. Each completed step is recorded in
 * `tenantry.onboardings` (the first in the same transaction as the tenant's catalog row), so a
 * crash at any point and a re-run continue where it stopped, with nothing made twice. A re-run of
 * a finished onboarding does nothing (`already-onboarded`); one with another name, plan or owner
 * is refused (ONBOARDING_CONFLICT). Two runs of one slug at once: the second waits for the first.
 *
 * @example
 * const onboarding = new TenantOnboarding({ catalog: ownerPool, owners: { home: ownerUrl }, migrations: 'migrations' });
 * const { tenant, target } = await onboarding.run({ slug: 'acme', name: 'Acme Inc.', plan: 'business' });
 * await onboarding.end();
 */
export class TenantOnboarding {
  readonly #options: TenantOnboardingOptions;
  readonly #placements: Placements;
  readonly #policy: PlacementPolicy;
  readonly #home: string;
  #migrations: Promise<Migration[]> | undefined;
  #view: { at: number; clusters: ClusterLoad[] } | undefined;

  constructor(options: TenantOnboardingOptions) {
    if (!options.catalog)
      throw new ConfigurationError('TenantOnboarding needs the catalog (home database, owner role)');
    this.#options = options;
    this.#home = options.homeCluster ?? 'home';
    if (typeof options.owners?.[this.#home] !== 'string')
      throw new ConfigurationError(`TenantOnboarding needs the owner URL of the ${this.#home} cluster`);
    this.#policy = options.policy ?? planPlacementPolicy();
    this.#placements = new Placements({ catalog: options.catalog, owners: options.owners, homeCluster: this.#home });
  }

  /** The onboarding record of a slug, or undefined (never onboarded, or made by `tenants create`). */
  status(slug: string): Promise<OnboardingRecord | undefined> {
    return findOnboarding(this.#options.catalog, parseOnboardInput({ slug, name: slug }).slug);
  }

  /**
   * Onboards a tenant, or continues or confirms an earlier onboarding of the same slug. Without a
   * delivery hook the owner's code is only in the result: a resumed run (the earlier attempt never
   * returned it) revokes that invitation and issues a new one; `reissueInvite` does it for a
   * finished onboarding too (a code lost after it was printed), unless the owner accepted one.
   */
  async run(input: OnboardInput, options: { reissueInvite?: boolean } = {}): Promise<OnboardResult> {
    const wanted = parseOnboardInput(input);
    const reissue = options.reissueInvite === true;
    if (wanted.ownerEmail && !this.#options.invitations)
      throw new ConfigurationError('An owner to invite needs the invitations option (an app-role TenantPool)');
    if (!wanted.ownerEmail && !this.#options.seed && !reissue) {
      const done = await this.#oneStep(wanted);
      if (done) return done;
    }
    const client = await this.#options.catalog.connect();
    let broken = false;
    try {
      await this.#lock(client, wanted.slug);
      try {
        return await this.#run(client, wanted, reissue);
      } finally {
        await client
          .query('select pg_advisory_unlock(hashtext($1), hashtext($2))', [LOCK_NAMESPACE, wanted.slug])
          .catch(() => (broken = true));
      }
    } finally {
      client.release(broken);
    }
  }

  /** Closes the pools this onboarding opened (not the catalog pool). */
  async end(): Promise<void> {
    await this.#placements.end();
  }

  async #lock(client: pg.PoolClient, slug: string): Promise<void> {
    const deadline = Date.now() + (this.#options.lockWaitMs ?? 10_000);
    for (;;) {
      const { rows } = await client.query<{ locked: boolean }>(
        'select pg_try_advisory_lock(hashtext($1), hashtext($2)) as locked',
        [LOCK_NAMESPACE, slug],
      );
      if (rows[0]!.locked) return;
      if (Date.now() >= deadline)
        throw new OnboardingError('ONBOARDING_BUSY', `Tenant ${slug} is being onboarded by another process right now`, {
          details: { slug },
        });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #run(
    client: pg.PoolClient,
    wanted: ReturnType<typeof parseOnboardInput>,
    reissueInvite: boolean,
  ): Promise<OnboardResult> {
    const catalog = new TenantCatalog(client);
    let record = await findOnboarding(client, wanted.slug);
    const ran: OnboardStep[] = [];
    let skipped: OnboardStep[] = [];
    let outcome: OnboardResult['outcome'];
    let created: Tenant | undefined;
    if (!record) {
      await this.#emit(wanted.slug, null, 'create', 'started');
      const made = await this.#create(client, wanted);
      record = made.record;
      created = made.tenant;
      await this.#emit(wanted.slug, record.tenantId, 'create', 'applied');
      await this.#emit(wanted.slug, record.tenantId, 'create', 'recorded');
      ran.push('create');
      outcome = 'onboarded';
    } else {
      const differ = [
        record.name !== wanted.name ? 'name' : '',
        wanted.plan !== undefined && wanted.plan !== record.plan ? 'plan' : '',
        wanted.ownerEmail !== undefined && record.ownerEmail !== null && wanted.ownerEmail !== record.ownerEmail
          ? 'ownerEmail'
          : '',
      ].filter(Boolean);
      if (differ.length > 0)
        throw new OnboardingError(
          'ONBOARDING_CONFLICT',
          `Tenant ${wanted.slug} was onboarded with another ${differ.join(' and ')}: nothing was changed (pick another slug, or repeat the first onboarding's values)`,
          { details: { slug: wanted.slug, fields: differ } },
        );
      const tenant = await catalog.get(record.tenantId);
      // the done step committed but released a placement database's hold after: repeat the release
      if (record.completedAt && tenant.status === 'active' && this.#remote(record.target))
        await this.#catalog(client).activate(tenant.id);
      if (record.completedAt) {
        // a finished onboarding's invitation, asked for again (its code was lost)
        let again: OwnerInvitation | undefined;
        if (reissueInvite) {
          if (!record.ownerEmail || !this.#options.invitations)
            throw new ConfigurationError(
              `Tenant ${wanted.slug} has no owner invitation to reissue (onboarded without an owner email, or no invitations option)`,
            );
          again = await inviteOwner(tenant.id, record.ownerEmail, this.#options.invitations, true);
        }
        return {
          tenant,
          target: record.target,
          outcome: 'already-onboarded',
          ran,
          skipped: ONBOARD_STEPS.filter((s) => record!.steps[s]),
          ...(again ? { invitation: again } : {}),
          attempts: record.attempts,
          completedAt: record.completedAt,
        };
      }
      if (tenant.status === 'deleted')
        throw new TenantryError('TENANT_DELETED', `Tenant ${wanted.slug} was deleted before its onboarding finished`, {
          status: 410,
          details: { slug: wanted.slug },
        });
      const ownerEmail = record.ownerEmail ?? wanted.ownerEmail ?? null;
      await recordAttempt(client, record.tenantId, ownerEmail);
      // an attempt killed inside the seed hook left the hold lifted: put it back first
      // (in its placement database once routed there: before, that database serves nobody)
      const routed = record.steps.route !== undefined && this.#remote(record.target);
      await this.#hold(client, record.tenantId, record.target, 'provisioning', routed);
      record = { ...record, ownerEmail, attempts: record.attempts + 1 };
      skipped = ONBOARD_STEPS.filter((s) => record!.steps[s]);
      outcome = 'resumed';
    }
    if (record.ownerEmail && !this.#options.invitations)
      throw new ConfigurationError('This onboarding invites an owner: pass the invitations option');

    const tenantId = record.tenantId;
    const tenant = created ?? (await catalog.get(tenantId));
    let completedAt: Date | null = null;
    let activated: Tenant | undefined;
    let invitation: OwnerInvitation | undefined;
    // the owner's code reaches the caller only in this call's result: an earlier attempt that
    // stopped never returned its code, so a resumed run without a delivery hook replaces it
    // (and so does an explicit reissue)
    const reissue = reissueInvite || (outcome === 'resumed' && !this.#options.invitations?.deliver);
    if (!record.steps.migrate) await this.#requireMigrations(record.slug, record.target);
    for (const step of this.#plan(record)) {
      if (record.steps[step] && !(step === 'invite' && reissue)) continue;
      await this.#emit(record.slug, tenantId, step, 'started');
      try {
        if (step === 'done') {
          const finished = await this.#finish(client, tenant, record);
          completedAt = finished.completedAt;
          activated = finished.tenant;
        } else {
          const result = await this.#step(client, step, tenant, record, reissue);
          if (result) invitation = result;
          await this.#emit(record.slug, tenantId, step, 'applied');
          await recordSteps(client, tenantId, [step]);
        }
      } catch (error) {
        const cause = (error as { code?: unknown }).code;
        const message = error instanceof Error ? error.message : String(error);
        await recordFailure(client, tenantId, `${step}: ${message}`).catch(() => undefined);
        throw new OnboardingError(
          'ONBOARDING_STEP_FAILED',
          `Onboarding ${record.slug} stopped at step ${step}: ${message}. The steps before it are recorded: run it again to continue`,
          { details: { slug: record.slug, step, cause: typeof cause === 'string' ? cause : null }, cause: error },
        );
      }
      await this.#emit(record.slug, tenantId, step, 'recorded');
      ran.push(step);
    }
    return {
      // the route step wrote the placement into the tenant's row, the done step its status
      // the done step answers the activated row (with the placement the route step wrote)
      tenant: activated ?? (ran.includes('route') || ran.includes('done') ? await catalog.get(tenantId) : tenant),
      target: record.target,
      outcome,
      ran,
      skipped: skipped.filter((s) => !ran.includes(s)),
      ...(invitation ? { invitation } : {}),
      attempts: record.attempts,
      completedAt,
    };
  }

  /**
   * A new tenant whose plan is `create` and `done` only (the shared tier of the home cluster, no
   * seed hook, no owner to invite): ONE statement, one round trip and one commit instead of ≈10
   * and two. The policy decides here, on the clusters as read at most {@link CLUSTER_VIEW_TTL_MS}
   * ago (plus this process's placements since); then the statement takes the slug's advisory
   * lock (tried, transaction-scoped), inserts the catalog row (active at once: nobody could see it
   * half-made), the record with both steps done and the audit entry. Any other case — the slug is
   * taken (onboarded already, or made outside onboarding), its lock is held (another run is
   * onboarding it), the policy says another tier or cluster — answers undefined and the
   * step-by-step path runs (under the session lock, resumable). A crash leaves the statement
   * committed or not at all.
   */
  async #oneStep(wanted: ReturnType<typeof parseOnboardInput>): Promise<OnboardResult | undefined> {
    const db = this.#options.catalog;
    const view = await this.#clusterView();
    const id = randomUUID();
    const settings = wanted.plan ? { plan: wanted.plan } : {};
    const { target } = this.#policy.decide({ tenant: { id, slug: wanted.slug, settings }, clusters: view.clusters });
    if (target.tier !== 'shared' || target.cluster !== this.#home) return undefined;
    await this.#emit(wanted.slug, null, 'create', 'started');
    let made;
    try {
      made = await db.query<TenantRow & { completed_at: Date }>(
        `with lock as (select pg_try_advisory_xact_lock(hashtext($1::text), hashtext($2::text)) as ok),
         tenant as (
           insert into tenantry.tenants (id, slug, name, settings, status)
           select $3::uuid, $2::text, $4::text, $5::jsonb, 'active' from lock where lock.ok returning ${TENANT_COLUMNS}),
         record as (
           insert into tenantry.onboardings (tenant_id, slug, name, plan, owner_email, target, steps, completed_at)
           select tenant.id, tenant.slug, tenant.name, $6::text, null, $7::jsonb, jsonb_build_object('create', now(), 'done', now()), now()
             from tenant returning completed_at),
         audit as (
           insert into tenantry.audit_log (tenant_id, actor_kind, action, detail)
           select tenant.id, 'system', 'tenant.onboarded', $8::jsonb from tenant returning 1)
         select tenant.*, record.completed_at from tenant, record, audit`,
        [
          LOCK_NAMESPACE,
          wanted.slug,
          id,
          wanted.name,
          JSON.stringify(settings),
          wanted.plan ?? null,
          JSON.stringify(target),
          JSON.stringify({
            plan: wanted.plan ?? null,
            tier: target.tier,
            cluster: target.cluster,
            ownerInvited: false,
            attempts: 1,
          }),
        ],
      );
    } catch (error) {
      // the slug was taken meanwhile (onboarded, or made outside onboarding): the full path says which
      if (sqlStateOf(error) === SqlState.uniqueViolation) return undefined;
      throw error;
    }
    const row = made.rows[0];
    // the slug's lock is held: another run is onboarding it; the full path waits for it
    if (!row) return undefined;
    const placed = view.clusters.find((c) => c.name === target.cluster);
    if (placed) {
      placed.tenants += 1;
      placed.load = placed.capacity > 0 ? placed.tenants / placed.capacity : Infinity;
    }
    for (const [step, phase] of [
      ['create', 'applied'],
      ['create', 'recorded'],
      ['done', 'started'],
      ['done', 'recorded'],
    ] as const)
      await this.#emit(wanted.slug, row.id, step, phase);
    return {
      tenant: tenantFromRow(row),
      target,
      outcome: 'onboarded',
      ran: ['create', 'done'],
      skipped: [],
      attempts: 1,
      completedAt: row.completed_at,
    };
  }

  /**
   * The clusters as a policy sees them (status, capacity, tenant counts), read at most once per
   * {@link CLUSTER_VIEW_TTL_MS}: counting the home cluster's tenants reads the whole catalog, so
   * the one-step path must not do it per onboarding.
   */
  async #clusterView(): Promise<{ at: number; clusters: ClusterLoad[] }> {
    if (this.#view && Date.now() - this.#view.at < CLUSTER_VIEW_TTL_MS) return this.#view;
    const { rows } = await this.#options.catalog.query<{
      name: string;
      status: ClusterLoad['status'];
      capacity: number;
      tenants: string;
    }>(
      `select c.name, c.status, c.capacity, ${clusterTenantsSql('c', '$1')} as tenants from tenantry.clusters c order by c.name`,
      [this.#home],
    );
    this.#view = {
      at: Date.now(),
      clusters: rows.map((r) => {
        const tenants = Number(r.tenants);
        return {
          name: r.name,
          status: r.status,
          capacity: r.capacity,
          tenants,
          load: r.capacity > 0 ? tenants / r.capacity : Infinity,
        };
      }),
    };
    return this.#view;
  }

  /** The catalog row, the placement decision and the record: one transaction. */
  async #create(
    client: pg.PoolClient,
    wanted: ReturnType<typeof parseOnboardInput>,
  ): Promise<{ record: OnboardingRecord; tenant: Tenant }> {
    await client.query('BEGIN');
    try {
      // provisioning: held at the data plane and unknown to requests until the done step
      const tenant = await new TenantCatalog(client).create(
        { slug: wanted.slug, name: wanted.name, settings: wanted.plan ? { plan: wanted.plan } : {} },
        { provisioning: true },
      );
      const question = await placementQuestion(client, tenant.id, { homeCluster: this.#home });
      const { target } = this.#policy.decide(question);
      // before anything commits: a schema or database with nothing to create in it would be activated empty
      await this.#requireMigrations(wanted.slug, target);
      const record = await insertOnboarding(client, {
        tenantId: tenant.id,
        slug: tenant.slug,
        name: tenant.name,
        plan: wanted.plan ?? null,
        ownerEmail: wanted.ownerEmail ?? null,
        target,
      });
      await client.query('COMMIT');
      return { record, tenant };
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /** The steps this tenant needs, in order. */
  #plan(record: OnboardingRecord): OnboardStep[] {
    const own = record.target.tier !== 'shared';
    const away = record.target.cluster !== this.#home;
    return ONBOARD_STEPS.filter((s) => {
      switch (s) {
        case 'provision':
          return own;
        case 'migrate':
          return own && this.#options.migrations !== undefined;
        case 'route':
          return own || away;
        case 'seed':
          return this.#options.seed !== undefined;
        case 'invite':
          return record.ownerEmail !== null;
        default:
          return true;
      }
    });
  }

  /**
   * `Placements.assign` on the connection this onboarding holds: assign takes a connection of its
   * catalog for its own lock, and from the catalog pool it would wait for ever on a pool of one
   * (this run holds that one).
   */
  async #route(held: pg.PoolClient, tenantId: string, t: PlacementTarget): Promise<void> {
    const placements = new Placements({
      // only its query: a client's connect() is not a pool's (assign would call it for a connection)
      catalog: { query: held.query.bind(held) } as Pick<pg.Pool, 'query'>,
      owners: this.#options.owners,
      homeCluster: this.#home,
    });
    try {
      await placements.assign(tenantId, t);
    } finally {
      await placements.end();
    }
  }

  async #step(
    held: pg.PoolClient,
    step: OnboardStep,
    tenant: Tenant,
    record: OnboardingRecord,
    reissue = false,
  ): Promise<OwnerInvitation | void> {
    const t = record.target;
    switch (step) {
      case 'provision':
        if (t.tier === 'schema') return this.#createSchema(t, tenant.id);
        return this.#createDatabase(t);
      case 'migrate':
        await migrateLocation({
          clusters: this.#options.owners,
          cluster: t.cluster,
          database: t.tier === 'database' ? t.database : null,
          schema: t.tier === 'schema' ? t.schema : null,
          migrations: await this.#loadMigrations(),
        });
        return;
      case 'route':
        return this.#route(held, tenant.id, t);
      case 'seed':
        // the hook writes as the tenant through the app role: the data plane must serve it for the
        // hook's duration (requests and jobs still see 'provisioning' in the catalog and stay out)
        await this.#hold(held, tenant.id, t, 'active');
        try {
          await runAs(tenant.id, () => this.#options.seed!({ tenant, target: t, attempt: record.attempts }));
        } finally {
          await this.#hold(held, tenant.id, t, 'provisioning');
        }
        return;
      case 'invite':
        return inviteOwner(tenant.id, record.ownerEmail!, this.#options.invitations!, reissue);
      default:
        return;
    }
  }

  /**
   * The schema, made by the owner role also when the cluster's URL is a superuser's: a schema
   * owned by anyone else has no USAGE for the owner, whose migrations would then skip it on the
   * search path and create their tables in `public`.
   */
  async #createSchema(t: PlacementTarget, tenantId: string): Promise<void> {
    const client = await this.#placements.ownerPool(t).connect();
    let broken = false;
    try {
      const { rows } = await client.query<{ owner: string; me: string }>(
        `select (select value from tenantry.meta where key = 'owner_role') as owner, current_user as me`,
      );
      const { owner, me } = rows[0]!;
      if (owner !== me) await client.query(`select set_config('role', $1, false)`, [owner]);
      // claimed for this tenant: no other tenant's route may point at it
      await createTenantSchema(client, t.schema!, 'select', { tenant: tenantId });
      if (owner !== me) await client.query('RESET ROLE');
    } catch (error) {
      broken = true;
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async #createDatabase(t: PlacementTarget): Promise<void> {
    const adminUrl = this.#options.admins?.[t.cluster];
    const ownerUrl = this.#options.owners[t.cluster];
    if (!adminUrl || !ownerUrl || !this.#options.install)
      throw new ConfigurationError(
        `The database tier on cluster ${t.cluster} needs that cluster's admin and owner URLs and the install options`,
      );
    await createTenantDatabase({ ...this.#options.install, adminUrl, ownerUrl, database: t.database!, ddl: 'select' });
  }

  /**
   * A schema or database tenant gets its tables from the migrations: without any (no
   * `migrations` option, or none of `tenant/` scope) the onboarding would finish with an empty
   * location and every request fail on a missing relation, so it is refused before that
   * (`ONBOARDING_NO_MIGRATIONS`; a resumed one stays `provisioning`: run it again with them).
   */
  async #requireMigrations(slug: string, target: PlacementTarget): Promise<void> {
    if (target.tier === 'shared') return;
    const tenantScoped =
      this.#options.migrations === undefined
        ? 0
        : (await this.#loadMigrations()).filter((m) => m.scope === 'tenant').length;
    if (tenantScoped === 0)
      throw new OnboardingError(
        'ONBOARDING_NO_MIGRATIONS',
        `Tenant ${slug} goes to the ${target.tier} tier, which needs the application's migrations to create its tables: ` +
          `${this.#options.migrations === undefined ? 'none were given' : 'the given ones have no tenant/ migration'} ` +
          '(pass --migrations <dir>, and --plugins <module> when plugins add migrations)',
        { details: { slug, tier: target.tier } },
      );
  }

  #loadMigrations(): Promise<Migration[]> {
    const m = this.#options.migrations!;
    this.#migrations ??= typeof m === 'string' ? loadMigrations(m) : Promise.resolve(m);
    return this.#migrations;
  }

  /** A placement database other than the home database (database tier, another cluster). */
  #remote(t: PlacementTarget): boolean {
    return t.tier === 'database' || t.cluster !== this.#home;
  }

  #catalog(client: pg.PoolClient): TenantCatalog {
    return new TenantCatalog(client, { placements: this.#placements });
  }

  /**
   * Lifts (`active`) or puts back (`provisioning`) a provisioning tenant's data-plane hold, at home
   * and in its placement database, under the tenant's lock and only while the catalog still says
   * provisioning (a delete meanwhile keeps its own hold).
   */
  async #hold(
    client: pg.PoolClient,
    tenantId: string,
    t: PlacementTarget,
    status: 'active' | 'provisioning',
    remote = this.#remote(t),
  ): Promise<void> {
    await withTenantLock(client, tenantId, async (on) => {
      const { rows } = await on.query<{ status: string }>('select status from tenantry.tenants where id = $1', [
        tenantId,
      ]);
      if (rows[0]?.status !== 'provisioning') return;
      const dbs: Queryable[] = [on];
      if (remote) dbs.push(this.#placements.ownerPool(t));
      for (const db of dbs) await writeTenantHold(db, tenantId, status);
    });
  }

  /**
   * The record closed, a `tenant.onboarded` entry in the tenant's audit log and the tenant
   * activated (its home hold released by core's trigger): ONE statement (data-modifying CTEs
   * commit together or not at all), so the step costs one round trip and one commit, and answers
   * the activated row (no re-read). A hold in its placement database is released after the commit
   * (fail closed), again by a re-run if this one stops.
   */
  async #finish(
    client: pg.PoolClient,
    tenant: Tenant,
    record: OnboardingRecord,
  ): Promise<{ completedAt: Date | null; tenant: Tenant | undefined }> {
    const { rows } = await client.query<TenantRow & { completed_at: Date | null }>(
      `with done as (
         update tenantry.onboardings
            set steps = steps || jsonb_build_object('done', now()), last_error = null, updated_at = now(), completed_at = now()
          where tenant_id = $1 returning completed_at),
       activated as (
         update tenantry.tenants set status = 'active', updated_at = now()
          where id = $1 and status = 'provisioning' returning ${TENANT_COLUMNS}),
       audit as (
         insert into tenantry.audit_log (tenant_id, actor_kind, action, detail)
         values ($1, 'system', 'tenant.onboarded', $2) returning 1)
       select d.completed_at, a.* from done d left join activated a on true`,
      [
        tenant.id,
        JSON.stringify({
          plan: record.plan,
          tier: record.target.tier,
          cluster: record.target.cluster,
          ownerInvited: record.ownerEmail !== null,
          attempts: record.attempts,
        }),
      ],
    );
    const row = rows[0];
    if (this.#remote(record.target)) await this.#catalog(client).activate(tenant.id);
    return {
      completedAt: row?.completed_at ?? null,
      tenant: row?.id && !this.#remote(record.target) ? tenantFromRow(row) : undefined,
    };
  }

  async #emit(slug: string, tenantId: string | null, step: OnboardStep, phase: OnboardStepEvent['phase']) {
    await this.#options.onStep?.({ slug, tenantId, step, phase });
  }
}

/**
 * Onboards one tenant with a {@link TenantOnboarding} made for the call (and closed after it).
 *
 * @example
 * const { outcome } = await onboardTenant({ slug: 'acme', name: 'Acme Inc.' }, { catalog: ownerPool, owners: { home: ownerUrl } });
 */
export async function onboardTenant(input: OnboardInput, options: TenantOnboardingOptions): Promise<OnboardResult> {
  const onboarding = new TenantOnboarding(options);
  try {
    return await onboarding.run(input);
  } finally {
    await onboarding.end();
  }
}
