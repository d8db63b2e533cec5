import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { OneTimeCodes } from '../../src/identity/one-time-codes.js';
import { TenantOnboarding, type TenantOnboardingOptions } from '../../src/lifecycle/onboard/index.js';
import { migrateLocation } from '../../src/tiers/migrate/migrate-location.js';
import { loadMigrations } from '../../src/tiers/migrate/migration-files.js';
import { planPlacementPolicy } from '../../src/tiers/placement-policy.js';
import { withDatabase } from '../../src/tiers/provision.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { codeOf } from '../support/refusal-code.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

// The application of these tests: the tiers fixture migrations (a `notes` tenant table), a seed
// that writes one welcome note (idempotently), owner invitations through the app role.
const MIGRATIONS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'tiers', 'fixtures', 'migrations');

let db: TestDatabase;
let appPool: TenantPool;
let router: TenantRouter;
let data: RoutedTenantPool;
let onboarding: TenantOnboarding;
const databases: string[] = [];
const extra: pg.Pool[] = [];
let seedCalls = 0;
let failSeedOnce = false;

async function seed(): Promise<void> {
  seedCalls++;
  await data.query(
    `insert into notes (id, body) select '00000000-0000-4000-8000-000000000001', 'Welcome'
      where not exists (select from notes where tenant_id = tenantry.current_tenant_id() and id = '00000000-0000-4000-8000-000000000001')`,
  );
  if (failSeedOnce) {
    failSeedOnce = false;
    throw new Error('seed interrupted');
  }
}

function options(overrides: Partial<TenantOnboardingOptions> = {}): TenantOnboardingOptions {
  return {
    catalog: db.owner,
    owners: { home: db.ownerUrl },
    admins: { home: db.adminUrl },
    install: {
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: ROLE_PASSWORD,
      ownerPassword: ROLE_PASSWORD,
      routerRole: db.routerRole,
      routerPassword: ROLE_PASSWORD,
      contextSecret: db.contextSecret,
    },
    // tenant databases named after this test database: dropped with it
    policy: planPlacementPolicy({ databaseName: (slug) => `${db.name}_${slug.replaceAll('-', '_')}` }),
    migrations: MIGRATIONS,
    seed,
    invitations: { pool: appPool },
    ...overrides,
  };
}

const notesOf = (tenantId: string) =>
  runAs(tenantId, async () => (await data.query<{ body: string }>('select body from notes')).rows.map((r) => r.body));
const onboardingRow = async (slug: string) =>
  (await db.owner.query('select * from tenantry.onboardings where slug = $1', [slug])).rows[0];
const count = async (sql: string, params: unknown[] = []) =>
  Number((await db.admin.query<{ n: string }>(`select count(*) as n from (${sql}) x`, params)).rows[0]!.n);

beforeAll(async () => {
  db = await createTestDatabase();
  // the shared tables of the home database (`tenantry migrate` would have made them)
  await migrateLocation({ clusters: { home: db.ownerUrl }, cluster: 'home', migrations: MIGRATIONS });
  appPool = db.appPool();
  const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
  extra.push(home);
  router = new TenantRouter({ pool: home });
  await router.start();
  data = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
  onboarding = new TenantOnboarding(options());
});

afterAll(async () => {
  await onboarding?.end();
  await data?.end();
  await router?.close();
  await Promise.all(extra.map((p) => p.end()));
  if (db) {
    const { rows } = await db.admin.query<{ datname: string }>(
      `select datname from pg_database where datname like $1`,
      [`${db.name}\\_%`],
    );
    for (const { datname } of [...rows, ...databases.map((datname) => ({ datname }))])
      await dropDatabase(db.admin, datname).catch(() => undefined);
    await db.drop();
  }
});

describe('onboarding', () => {
  it('onboards a shared-tier tenant in one call: catalog row, seed, owner invitation, audit entry', async () => {
    const before = seedCalls;
    const result = await onboarding.run({ slug: 'acme', name: 'Acme Inc.', ownerEmail: 'Owner@Acme.test' });
    expect(result).toMatchObject({
      outcome: 'onboarded',
      ran: ['create', 'seed', 'invite', 'done'],
      skipped: [],
      target: { tier: 'shared', cluster: 'home' },
      invitation: { email: 'owner@acme.test', issued: true, delivered: false },
      attempts: 1,
    });
    expect(result.invitation!.code).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(result.completedAt).toBeInstanceOf(Date);
    expect(result.tenant).toMatchObject({ slug: 'acme', name: 'Acme Inc.', status: 'active' });
    expect(seedCalls - before).toBe(1);
    expect(await notesOf(result.tenant.id)).toEqual(['Welcome']);
    // the invitation is the tenant's, for the owner role, and spendable once
    const codes = new OneTimeCodes(appPool);
    const spent = await codes.consume({ purpose: 'invite', code: result.invitation!.code! });
    expect(spent).toMatchObject({ tenantId: result.tenant.id, payload: { email: 'owner@acme.test', role: 'owner' } });
    const audit = await db.admin.query(
      'select actor_kind, action, detail from tenantry.audit_log where tenant_id = $1',
      [result.tenant.id],
    );
    expect(audit.rows).toEqual([
      {
        actor_kind: 'system',
        action: 'tenant.onboarded',
        detail: { plan: null, tier: 'shared', cluster: 'home', ownerInvited: true, attempts: 1 },
      },
    ]);
  });

  it('a re-run of a finished onboarding is a no-op that says so; another name, plan or owner is a conflict', async () => {
    const tenants = await count('select from tenantry.tenants');
    const codes = await count('select from tenantry_private.one_time_codes');
    const seeds = seedCalls;
    const again = await onboarding.run({ slug: 'acme', name: 'Acme Inc.' });
    expect(again).toMatchObject({ outcome: 'already-onboarded', ran: [], attempts: 1 });
    for (const conflicting of [
      { slug: 'acme', name: 'Acme Corp.' },
      { slug: 'acme', name: 'Acme Inc.', plan: 'business' },
      { slug: 'acme', name: 'Acme Inc.', ownerEmail: 'someone@else.test' },
    ])
      expect(await codeOf(onboarding.run(conflicting))).toBe('ONBOARDING_CONFLICT');
    expect(await count('select from tenantry.tenants')).toBe(tenants);
    expect(await count('select from tenantry_private.one_time_codes')).toBe(codes);
    expect(seedCalls).toBe(seeds);
    expect(await onboardingRow('acme')).toMatchObject({ name: 'Acme Inc.', plan: null, attempts: 1 });
  });

  it('refuses bad input and a slug taken outside onboarding, changing nothing', async () => {
    const tenants = await count('select from tenantry.tenants');
    await db.owner.query(`insert into tenantry.tenants (slug, name) values ('made-by-hand', 'By hand')`);
    expect(await codeOf(onboarding.run({ slug: 'Bad Slug', name: 'x' }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(onboarding.run({ slug: 'ok', name: '  ' }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(onboarding.run({ slug: 'ok', name: 'Ok', ownerEmail: 'not-an-email' }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await codeOf(onboarding.run({ slug: 'ok', name: 'Ok', plan: 'Gold Plan' }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(onboarding.run({ slug: 'made-by-hand', name: 'By hand' }))).toBe('TENANT_SLUG_TAKEN');
    expect(await count('select from tenantry.tenants')).toBe(tenants + 1);
    expect(await count('select from tenantry.onboardings where slug in ($1, $2)', ['ok', 'made-by-hand'])).toBe(0);
  });

  it('places a business tenant in its own schema: provisioned, migrated, routed, seeded there', async () => {
    const result = await onboarding.run({ slug: 'globex', name: 'Globex', plan: 'business' });
    expect(result).toMatchObject({
      outcome: 'onboarded',
      ran: ['create', 'provision', 'migrate', 'route', 'seed', 'done'],
      target: { tier: 'schema', cluster: 'home', schema: 't_globex' },
    });
    expect(result.tenant.placement).toMatchObject({ tier: 'schema', schema: 't_globex' });
    const inSchema = await db.admin.query(`select body, tenant_id from t_globex.notes`);
    expect(inSchema.rows).toEqual([{ body: 'Welcome', tenant_id: result.tenant.id }]);
    const versions = await db.admin.query(
      `select version from tenantry.schema_migrations where target like '%t_globex' order by version`,
    );
    expect(versions.rows.map((r) => r.version)).toEqual([2, 3]);
  });

  it('places an enterprise tenant in its own database, installed and migrated', async () => {
    const result = await onboarding.run({ slug: 'initech', name: 'Initech', plan: 'enterprise' });
    const database = `${db.name}_initech`;
    databases.push(database);
    expect(result).toMatchObject({
      outcome: 'onboarded',
      target: { tier: 'database', cluster: 'home', database },
    });
    expect(await notesOf(result.tenant.id)).toEqual(['Welcome']);
    const there = new pg.Pool({ connectionString: withDatabase(db.adminUrl, database), max: 1 });
    // its idle connection is cut (57P01) when the database is dropped with (force): not a test failure
    there.on('error', () => undefined);
    extra.push(there);
    expect((await there.query('select body from public.notes')).rows).toEqual([{ body: 'Welcome' }]);
  });

  it('needs one catalog connection: the route step runs on the one the onboarding holds', async () => {
    const one = new pg.Pool({ connectionString: db.ownerUrl, max: 1 });
    extra.push(one);
    const single = new TenantOnboarding(options({ catalog: one, seed: undefined, lockWaitMs: 2000 }));
    try {
      const result = await single.run({ slug: 'solo', name: 'Solo', plan: 'business' });
      expect(result).toMatchObject({ outcome: 'onboarded', ran: ['create', 'provision', 'migrate', 'route', 'done'] });
    } finally {
      await single.end();
    }
  });

  it('continues after a failed step: recorded steps are not run again, nothing is made twice', async () => {
    failSeedOnce = true;
    const failed = await onboarding
      .run({ slug: 'hooli', name: 'Hooli', plan: 'business', ownerEmail: 'o@hooli.test' })
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'ONBOARDING_STEP_FAILED', details: { slug: 'hooli', step: 'seed' } });
    expect(String((failed as Error).message)).toContain('run it again');
    expect(await onboardingRow('hooli')).toMatchObject({ completed_at: null, last_error: 'seed: seed interrupted' });
    const resumed = await onboarding.run({ slug: 'hooli', name: 'Hooli' });
    expect(resumed).toMatchObject({
      outcome: 'resumed',
      skipped: ['create', 'provision', 'migrate', 'route'],
      ran: ['seed', 'invite', 'done'],
      attempts: 2,
    });
    expect(await notesOf(resumed.tenant.id)).toEqual(['Welcome']);
    expect(await count(`select from tenantry.tenants where slug = 'hooli'`)).toBe(1);
    expect(await count(`select from tenantry_private.one_time_codes where tenant_id = $1`, [resumed.tenant.id])).toBe(
      1,
    );
    expect(await onboardingRow('hooli')).toMatchObject({ last_error: null, attempts: 2 });
  });

  it('an attempt stopped after the invite step (no delivery hook): the re-run revokes the unseen code and returns a new one; reissueInvite after acceptance issues nothing', async () => {
    const stopping = new TenantOnboarding(
      options({
        seed: undefined,
        onStep: ({ step, phase }) => {
          if (`${step}:${phase}` === 'invite:recorded') throw new Error('stopped after the invite');
        },
      }),
    );
    const valid = async (tenantId: string) =>
      (
        await db.admin.query<{ hash: Buffer }>(
          `select code_hash as hash from tenantry_private.one_time_codes
            where tenant_id = $1 and purpose = 'invite' and consumed_at is null and expires_at > now()`,
          [tenantId],
        )
      ).rows.map((r) => r.hash.toString('hex'));
    try {
      await expect(stopping.run({ slug: 'unseen', name: 'Unseen', ownerEmail: 'o@unseen.test' })).rejects.toThrow(
        'stopped after the invite',
      );
      const id = (await onboardingRow('unseen')).tenant_id as string;
      expect(await valid(id)).toHaveLength(1);
      const resumed = await onboarding.run({ slug: 'unseen', name: 'Unseen' });
      expect(resumed).toMatchObject({ outcome: 'resumed', invitation: { issued: true, replaced: true } });
      expect(resumed.ran).toContain('invite');
      const code = resumed.invitation!.code!;
      expect(await valid(id)).toEqual([OneTimeCodes.hash(code).toString('hex')]);
      // the owner accepts it: a reissue issues nothing, the accepted code stays the only one
      expect(await new OneTimeCodes(appPool).consume({ purpose: 'invite', code })).toBeDefined();
      const again = await onboarding.run({ slug: 'unseen', name: 'Unseen' }, { reissueInvite: true });
      expect(again).toMatchObject({ outcome: 'already-onboarded', invitation: { issued: false, accepted: true } });
      expect(again.invitation!.code).toBeUndefined();
      expect(await valid(id)).toEqual([]);
      // a finished onboarding without an owner has nothing to reissue
      await onboarding.run({ slug: 'no-owner', name: 'No owner' });
      await expect(
        onboarding.run({ slug: 'no-owner', name: 'No owner' }, { reissueInvite: true }),
      ).rejects.toMatchObject({ code: 'CONFIGURATION_ERROR' });
    } finally {
      await stopping.end();
    }
  });

  it('a half-made onboarding is not an active tenant: provisioning, held at the data plane, until done', async () => {
    let stopAt: string | undefined = 'invite:applied';
    const stopping = new TenantOnboarding(
      options({
        onStep: ({ step, phase }) => {
          if (`${step}:${phase}` === stopAt) throw new Error(`stopped at ${stopAt}`);
        },
      }),
    );
    try {
      expect(await codeOf(stopping.run({ slug: 'halfway', name: 'Halfway', ownerEmail: 'o@halfway.test' }))).toBe(
        'ONBOARDING_STEP_FAILED',
      );
      const row = (await db.admin.query(`select id, status from tenantry.tenants where slug = 'halfway'`)).rows[0];
      expect(row.status).toBe('provisioning');
      const id = row.id as string;
      const held = await db.admin.query('select status from tenantry.inactive_tenants where tenant_key = $1', [id]);
      expect(held.rows).toEqual([{ status: 'provisioning' }]);
      // the data plane refuses its context (like a suspended tenant's), and nothing is written
      expect(await codeOf(runAs(id, () => appPool.query('select * from notes')))).toBe('TENANT_SUSPENDED');
      expect(
        await codeOf(runAs(id, () => appPool.query(`insert into notes (id, body) values (gen_random_uuid(), 'x')`))),
      ).toBe('TENANT_SUSPENDED');
      expect(await count('select from notes where tenant_id = $1', [id])).toBe(1);
      // an operator cannot wake it by hand, the catalog does not list it as active
      const { TenantCatalog } = await import('../../src/catalog/tenant-catalog.js');
      const catalog = new TenantCatalog(db.owner);
      expect(await codeOf(catalog.resume(id))).toBe('INVALID_ARGUMENT');
      expect((await catalog.list({ status: 'active' })).tenants.map((t) => t.slug)).not.toContain('halfway');
      expect((await catalog.get(id)).status).toBe('provisioning');
      // the re-run finishes it and only then it serves
      stopAt = undefined;
      const done = await stopping.run({ slug: 'halfway', name: 'Halfway' });
      expect(done).toMatchObject({ outcome: 'resumed', tenant: { status: 'active' } });
      expect((await db.admin.query('select from tenantry.inactive_tenants where tenant_key = $1', [id])).rowCount).toBe(
        0,
      );
      expect(await notesOf(id)).toEqual(['Welcome']);
    } finally {
      await stopping.end();
    }
  });

  it('a half-made own-database tenant is held in its database too, and released by the done step', async () => {
    const stopping = new TenantOnboarding(
      options({
        onStep: ({ step, phase }) => {
          if (step === 'done' && phase === 'started') throw new Error('stopped before done');
        },
      }),
    );
    const database = `${db.name}_umbrella`;
    databases.push(database);
    const there = new pg.Pool({ connectionString: withDatabase(db.adminUrl, database), max: 1 });
    there.on('error', () => undefined);
    extra.push(there);
    try {
      await stopping.run({ slug: 'umbrella', name: 'Umbrella', plan: 'enterprise' }).catch(() => undefined);
      const id = (await onboardingRow('umbrella')).tenant_id as string;
      expect((await there.query('select status from tenantry.inactive_tenants')).rows).toEqual([
        { status: 'provisioning' },
      ]);
      expect(await codeOf(notesOf(id))).toBe('TENANT_SUSPENDED');
      const done = await onboarding.run({ slug: 'umbrella', name: 'Umbrella' });
      expect(done).toMatchObject({ outcome: 'resumed', ran: ['done'], tenant: { status: 'active' } });
      expect((await there.query('select status from tenantry.inactive_tenants')).rows).toEqual([]);
      expect(await notesOf(id)).toEqual(['Welcome']);
    } finally {
      await stopping.end();
    }
  });

  it('a shared tenant with nothing else to do: one statement on the catalog, one commit, the same end state', async () => {
    const statements: string[] = [];
    const counting = {
      query: (...args: Parameters<pg.Pool['query']>) => {
        statements.push(String(args[0]));
        return (db.owner.query as (...a: unknown[]) => unknown)(...args);
      },
      connect: () => db.owner.connect(),
    } as unknown as pg.Pool;
    const events: string[] = [];
    const fast = new TenantOnboarding(
      options({ catalog: counting, seed: undefined, onStep: (e) => void events.push(`${e.step}:${e.phase}`) }),
    );
    try {
      const result = await fast.run({ slug: 'quick', name: 'Quick' });
      // the clusters' view (at most once a second), then the onboarding's one statement
      expect(statements.filter((q) => !q.includes('from tenantry.clusters'))).toHaveLength(1);
      expect(statements.length).toBeLessThanOrEqual(2);
      expect(result).toMatchObject({
        outcome: 'onboarded',
        ran: ['create', 'done'],
        skipped: [],
        target: { tier: 'shared', cluster: 'home' },
        attempts: 1,
        tenant: { slug: 'quick', name: 'Quick', status: 'active', placement: { tier: 'shared' } },
      });
      expect(result.completedAt).toBeInstanceOf(Date);
      expect(events).toEqual(['create:started', 'create:applied', 'create:recorded', 'done:started', 'done:recorded']);
      const id = result.tenant.id;
      expect(await onboardingRow('quick')).toMatchObject({ tenant_id: id, attempts: 1, last_error: null });
      expect(Object.keys((await onboardingRow('quick')).steps).sort()).toEqual(['create', 'done']);
      expect(await count('select from tenantry.inactive_tenants where tenant_key = $1', [id])).toBe(0);
      const audit = await db.admin.query(
        'select actor_kind, action, detail from tenantry.audit_log where tenant_id = $1',
        [id],
      );
      expect(audit.rows).toEqual([
        {
          actor_kind: 'system',
          action: 'tenant.onboarded',
          detail: { plan: null, tier: 'shared', cluster: 'home', ownerInvited: false, attempts: 1 },
        },
      ]);
      // it serves at once, and a re-run is the usual no-op (or conflict)
      expect(await runAs(id, () => appPool.query('select * from notes'))).toMatchObject({ rowCount: 0 });
      statements.length = 0;
      expect(await fast.run({ slug: 'quick', name: 'Quick' })).toMatchObject({ outcome: 'already-onboarded', ran: [] });
      expect(await codeOf(fast.run({ slug: 'quick', name: 'Quicker' }))).toBe('ONBOARDING_CONFLICT');
      expect(await count(`select from tenantry.tenants where slug = 'quick'`)).toBe(1);
    } finally {
      await fast.end();
    }
  });

  it('the one-statement path leaves a taken, locked or stopped slug to the step-by-step path, changing nothing', async () => {
    const fast = new TenantOnboarding(options({ seed: undefined, lockWaitMs: 200 }));
    const holder = await db.owner.connect();
    try {
      await db.owner.query(`insert into tenantry.tenants (slug, name) values ('by-hand-2', 'By hand')`);
      expect(await codeOf(fast.run({ slug: 'by-hand-2', name: 'By hand' }))).toBe('TENANT_SLUG_TAKEN');
      expect(await count(`select from tenantry.onboardings where slug = 'by-hand-2'`)).toBe(0);
      // another run holds the slug's lock: this one waits (bounded), makes nothing
      await holder.query(`select pg_advisory_lock(hashtext('tenantry.onboard'), hashtext('busy-one'))`);
      expect(await codeOf(fast.run({ slug: 'busy-one', name: 'Busy' }))).toBe('ONBOARDING_BUSY');
      expect(await count(`select from tenantry.tenants where slug = 'busy-one'`)).toBe(0);
      await holder.query(`select pg_advisory_unlock(hashtext('tenantry.onboard'), hashtext('busy-one'))`);
      expect(await fast.run({ slug: 'busy-one', name: 'Busy' })).toMatchObject({ outcome: 'onboarded' });
      // stopped before its statement: nothing made; a re-run onboards it
      const stopping = new TenantOnboarding(
        options({
          seed: undefined,
          onStep: ({ step, phase }) => {
            if (step === 'create' && phase === 'started') throw new Error('stopped');
          },
        }),
      );
      try {
        await expect(stopping.run({ slug: 'stopped-one', name: 'Stopped' })).rejects.toThrow('stopped');
      } finally {
        await stopping.end();
      }
      expect(await count(`select from tenantry.tenants where slug = 'stopped-one'`)).toBe(0);
      expect(await fast.run({ slug: 'stopped-one', name: 'Stopped' })).toMatchObject({ outcome: 'onboarded' });
      // a plan with its own tier takes the step-by-step path
      expect(await fast.run({ slug: 'own-schema', name: 'Own', plan: 'business' })).toMatchObject({
        ran: ['create', 'provision', 'migrate', 'route', 'done'],
      });
    } finally {
      holder.release();
      await fast.end();
    }
  });

  it('refuses to activate a schema or database tenant without migrations: new or resumed, nothing activated', async () => {
    const bare = new TenantOnboarding(options({ migrations: undefined, seed: undefined }));
    const noTenantScope = new TenantOnboarding(
      options({ migrations: (await loadMigrations(MIGRATIONS)).filter((m) => m.scope === 'global'), seed: undefined }),
    );
    try {
      const tenants = await count('select from tenantry.tenants');
      // a new tenant: refused before its catalog row commits
      for (const plan of ['business', 'enterprise']) {
        const refused = await bare.run({ slug: `bare-${plan}`, name: 'Bare', plan }).catch((e: unknown) => e);
        expect(refused).toMatchObject({ code: 'ONBOARDING_NO_MIGRATIONS', details: { slug: `bare-${plan}` } });
        expect(String((refused as Error).message)).toContain('--migrations');
      }
      expect(await codeOf(noTenantScope.run({ slug: 'bare-global', name: 'Bare', plan: 'business' }))).toBe(
        'ONBOARDING_NO_MIGRATIONS',
      );
      expect(await count('select from tenantry.tenants')).toBe(tenants);
      expect(await count(`select from tenantry.onboardings where slug like 'bare-%'`)).toBe(0);
      expect(await count(`select from pg_namespace where nspname like 't_bare%'`)).toBe(0);
      // a shared tenant needs none (the shared tables are the cluster's)
      expect((await bare.run({ slug: 'bare-shared', name: 'Bare' })).tenant.status).toBe('active');

      // stopped at the migrate step (a migration the location refuses), then resumed without migrations
      const broken = new TenantOnboarding(
        options({
          seed: undefined,
          migrations: [
            { version: 2, name: '002_broken.sql', scope: 'tenant', sql: 'select no_such_function()', checksum: 'x' },
          ],
        }),
      );
      try {
        expect(
          await broken.run({ slug: 'stuck', name: 'Stuck', plan: 'business' }).catch((e: unknown) => e),
        ).toMatchObject({ code: 'ONBOARDING_STEP_FAILED', details: { step: 'migrate' } });
      } finally {
        await broken.end();
      }
      expect(await codeOf(bare.run({ slug: 'stuck', name: 'Stuck' }))).toBe('ONBOARDING_NO_MIGRATIONS');
      expect(await count(`select from tenantry.tenants where slug = 'stuck' and status = 'provisioning'`)).toBe(1);
      expect(await onboardingRow('stuck')).toMatchObject({ completed_at: null });
      // with the migrations it finishes, its tables made
      const resumed = await onboarding.run({ slug: 'stuck', name: 'Stuck' });
      expect(resumed).toMatchObject({ outcome: 'resumed', tenant: { status: 'active' } });
      expect(await count(`select from pg_tables where schemaname = 't_stuck' and tablename = 'notes'`)).toBe(1);
    } finally {
      await bare.end();
      await noTenantScope.end();
    }
  });

  it('keeps each tenant to itself: the other tenant sees none of its notes or invitations, and the app role no onboarding record', async () => {
    const acme = (await onboardingRow('acme')).tenant_id as string;
    const hooli = (await onboardingRow('hooli')).tenant_id as string;
    const codes = new OneTimeCodes(appPool);
    // acme (shared tier, home database) reaches for hooli's schema, codes and record
    expect((await runAs(acme, () => codes.list('invite'))).map((c) => c.payload.email)).toEqual(['owner@acme.test']);
    expect(await runAs(acme, () => appPool.query('select * from t_hooli.notes'))).toMatchObject({ rowCount: 0 });
    expect(await codeOf(runAs(acme, () => appPool.query('select * from tenantry.onboardings')))).toBe('42501');
    expect(
      await codeOf(runAs(acme, () => appPool.query(`update tenantry.onboardings set name = 'x' where slug = 'hooli'`))),
    ).toBe('42501');
    // and nothing changed on hooli's side
    expect(await notesOf(hooli)).toEqual(['Welcome']);
    expect((await runAs(hooli, () => codes.list('invite'))).map((c) => c.payload.email)).toEqual(['o@hooli.test']);
    expect(await onboardingRow('hooli')).toMatchObject({ name: 'Hooli', attempts: 2 });
  });
});
