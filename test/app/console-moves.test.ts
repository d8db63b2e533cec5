import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantPurger } from '../../src/lifecycle/index.js';
import { TenantTiers } from '../../app/tiers/tenant-tiers.js';
import pg from 'pg';
import { TenantRateLimits } from '../../src/limits/index.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';
import { outboxPurgeParticipant } from '../../app/identity/outbox-purge.js';

/** Moves from the operator console: start, watch to the end, refusals; audited in the tenant's log. */
let f: AppFixture;
let tiers: TenantTiers | undefined;
let charlie: { id: string; slug: string };
let limitsPool: pg.Pool | undefined;
let limits: TenantRateLimits | undefined;

beforeAll(async () => {
  f = await createAppFixture({
    // the move limit: one move an hour on the default plan
    limits: async (db) => {
      limitsPool = new pg.Pool({ connectionString: db.ownerUrl, max: 2 });
      limits = new TenantRateLimits({
        store: { postgres: limitsPool },
        catalog: limitsPool,
        limits: { api: { durationSeconds: 60 }, move: { durationSeconds: 3600, onStoreDown: 'closed' } },
        plans: { free: { api: 10_000, move: 1 } },
        defaultPlan: 'free',
        storeTimeoutMs: 10_000,
      });
      await limits.start();
      return { api: limits };
    },
    console: {
      moves: (db) => {
        tiers = new TenantTiers({
          clusters: { home: { ownerUrl: db.ownerUrl, appUrl: db.appUrl } },
          install: { appRole: db.appRole, ownerRole: db.ownerRole, contextSecret: db.contextSecret },
        });
        return tiers;
      },
    },
  });
  const created = await f.catalog.create({ slug: 'charlie', name: 'Charlie' });
  charlie = { id: created.id, slug: created.slug };
});
afterAll(async () => {
  await tiers?.end();
  await f?.app.close();
  await limits?.close();
  await limitsPool?.end();
  await f?.close();
});

async function session(): Promise<{ cookie: string; csrf: string }> {
  const res = await f.call('POST', '/console/api/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
  expect(res.statusCode, res.body).toBe(200);
  return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken };
}

describe('moves in the console', () => {
  it('starts a move, which runs to the end while the page watches; the tenant log records who and why', async () => {
    const s = await session();
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    const started = await f.call('POST', '/console/api/tenants/charlie/moves', {
      headers,
      payload: { tier: 'schema', cluster: 'home', reason: 'bigger customer, own schema' },
    });
    expect(started.statusCode, started.body).toBe(202);
    expect(started.json().target).toEqual({ tier: 'schema', cluster: 'home', schema: 't_charlie' });
    // recorded before the answer: a crash right after the 202 leaves a move to resume
    const recorded = await f.db.admin.query('select tenant_id from tenantry.moves where id = $1', [
      started.json().moveId,
    ]);
    expect(recorded.rows).toEqual([{ tenant_id: charlie.id }]);
    const steps = new Set<string>();
    const deadline = Date.now() + 60_000;
    let last: { step: string; open: boolean } | undefined;
    while (Date.now() < deadline) {
      const res = await f.call('GET', '/console/api/tenants/charlie/moves', { headers });
      expect(res.statusCode).toBe(200);
      last = res.json().moves[0];
      if (last) steps.add(last.step);
      if (last && !last.open) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(last?.step).toBe('done');
    const { rows } = await f.db.admin.query('select tier, schema from tenantry.placements where tenant_id = $1', [
      charlie.id,
    ]);
    expect(rows[0]).toEqual({ tier: 'schema', schema: 't_charlie' });
    const { rows: audit } = await f.db.admin.query<{ reason: string | null }>(
      'select reason from tenantry.audit_log where tenant_id = $1',
      [charlie.id],
    );
    expect(audit.map((a) => a.reason)).toContain('console move to schema on home: bigger customer, own schema');
    // a finished move is neither resumed nor rolled back
    const moveId = (await f.call('GET', '/console/api/tenants/charlie/moves', { headers })).json().moves[0].id;
    const rollback = await f.call('POST', `/console/api/tenants/charlie/moves/${moveId}/rollback`, {
      headers,
      payload: { reason: 'too late to roll back' },
    });
    expect(rollback.statusCode).toBe(409);
    // another tenant's route does not reach this move: 404, nothing done
    const other = await f.call('POST', `/console/api/tenants/alpha/moves/${moveId}/resume`, {
      headers,
      payload: { reason: 'through the wrong tenant' },
    });
    expect(other.statusCode).toBe(404);
    expect((await f.call('GET', '/console/api/tenants/alpha/moves', { headers })).json().moves).toEqual([]);
    // where it already lives: refused at once, nothing started
    const again = await f.call('POST', '/console/api/tenants/charlie/moves', {
      headers,
      payload: { tier: 'schema', cluster: 'home', reason: 'the same place again' },
    });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('ALREADY_PLACED');
  });

  it('a second move within the hour is refused by the tenant’s move limit (429), nothing started; another tenant’s limit is its own', async () => {
    const s = await session();
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    const before = await f.db.admin.query('select id from tenantry.moves where tenant_id = $1', [charlie.id]);
    const refused = await f.call('POST', '/console/api/tenants/charlie/moves', {
      headers,
      payload: { tier: 'shared', cluster: 'home', reason: 'back to the shared tables' },
    });
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json().error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(60);
    const after = await f.db.admin.query('select id from tenantry.moves where tenant_id = $1', [charlie.id]);
    expect(after.rows).toEqual(before.rows);
    // from the other side: alpha's move limit is untouched (its one move an hour is still there)
    await expect(limits!.consume(f.a.id, 'move')).resolves.toMatchObject({ points: 1, remaining: 0 });
  });

  it('a move recorded but never run (a crash after the 202) is finished by resumeOpenMoves at the next start', async () => {
    const delta = await f.catalog.create({ slug: 'delta-moves', name: 'Delta' });
    const recorded = await tiers!.start(delta.id, { tier: 'schema', cluster: 'home', schema: 't_delta_moves' });
    expect(recorded.step).toBe('created');
    const { resumed, failed } = await tiers!.resumeOpenMoves();
    expect(failed).toEqual([]);
    expect(resumed).toContain(recorded.id);
    const { rows } = await f.db.admin.query<{ step: string; tier: string }>(
      `select m.step, p.tier from tenantry.moves m join tenantry.placements p on p.tenant_id = m.tenant_id where m.id = $1`,
      [recorded.id],
    );
    expect(rows).toEqual([{ step: 'done', tier: 'schema' }]);
    // nothing left open to resume
    expect((await tiers!.resumeOpenMoves()).resumed).toEqual([]);
  });

  it('refuses bad input with 400, unknown clusters, inactive tenants, and a change without CSRF', async () => {
    const s = await session();
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    for (const payload of [
      { tier: 'moon', cluster: 'home', reason: 'a valid reason here' },
      { tier: 'schema', cluster: 'Home!', reason: 'a valid reason here' },
      { tier: 'schema', cluster: 'home', reason: '' },
      { tier: 'schema', cluster: 'home', reason: 'a valid reason here', schema: 'public' },
      { tier: 'schema', cluster: 'nowhere', reason: 'a valid reason here' },
    ]) {
      const res = await f.call('POST', '/console/api/tenants/alpha/moves', { headers, payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    const noCsrf = await f.call('POST', '/console/api/tenants/alpha/moves', {
      headers: { cookie: s.cookie },
      payload: { tier: 'schema', cluster: 'home', reason: 'a valid reason here' },
    });
    expect(noCsrf.statusCode).toBe(403);
    await f.catalog.suspend(f.b.id);
    const suspended = await f.call('POST', '/console/api/tenants/bravo/moves', {
      headers,
      payload: { tier: 'schema', cluster: 'home', reason: 'a valid reason here' },
    });
    expect(suspended.statusCode).toBe(409);
    await f.catalog.resume(f.b.id);
    const { rows } = await f.db.admin.query(
      `select count(*)::int as n from tenantry.moves m join tenantry.tenants t on t.id = m.tenant_id
        where t.slug in ('alpha', 'bravo')`,
    );
    expect(rows[0].n).toBe(0);
  });
});

describe('purge in the console', () => {
  let purged: AppFixture;
  let purger: TenantPurger | undefined;
  beforeAll(async () => {
    purged = await createAppFixture({
      console: {
        purger: (db) =>
          (purger = new TenantPurger({
            catalog: db.owner,
            owners: { home: db.ownerUrl },
            participants: [outboxPurgeParticipant(db.owner)],
          })),
      },
    });
  });
  afterAll(async () => {
    await purger?.end();
    await purged?.close();
  });

  it('purges a soft-deleted throwaway tenant with the slug typed and a reason; the other tenant keeps everything', async () => {
    const g = purged;
    const throwaway = await g.catalog.create({ slug: 'throwaway', name: 'Throwaway' });
    await g.insertRecordings(g.a, g.users.alice, 2);
    const alphaBefore = await g.recordingsOf(g.a);
    const res = await g.call('POST', '/console/api/sign-in', { payload: { email: g.staff.email, password: PASSWORD } });
    const headers = { cookie: String(res.headers['set-cookie']).split(';')[0]!, 'x-csrf-token': res.json().csrfToken };
    // an active tenant is not purged
    const active = await g.call('POST', '/console/api/tenants/throwaway/purge', {
      headers,
      payload: { confirm: 'throwaway', reason: 'test purge of a throwaway', ignoreRetention: true },
    });
    expect(active.statusCode).toBe(409);
    await g.catalog.softDelete(throwaway.id);
    // within retention, refused with the reason; a wrong slug refused
    const early = await g.call('POST', '/console/api/tenants/throwaway/purge', {
      headers,
      payload: { confirm: 'throwaway', reason: 'test purge of a throwaway' },
    });
    expect(early.statusCode).toBe(409);
    const wrong = await g.call('POST', '/console/api/tenants/throwaway/purge', {
      headers,
      payload: { confirm: 'alpha', reason: 'test purge of a throwaway', ignoreRetention: true },
    });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error.code).toBe('PURGE_CONFIRMATION_REQUIRED');
    const plan = (await g.call('GET', '/console/api/tenants/throwaway/purge', { headers })).json();
    expect(plan.plan.blockers.length).toBeGreaterThan(0);
    const started = await g.call('POST', '/console/api/tenants/throwaway/purge', {
      headers,
      payload: { confirm: 'throwaway', reason: 'test purge of a throwaway', ignoreRetention: true },
    });
    expect(started.statusCode, started.body).toBe(202);
    const deadline = Date.now() + 60_000;
    let view: { status: string; run: { state: string } | null; report?: { operator: string; signatureValid: boolean } };
    do {
      await new Promise((r) => setTimeout(r, 200));
      view = (await g.call('GET', '/console/api/tenants/throwaway/purge', { headers })).json();
    } while (view.status !== 'purged' && view.run?.state !== 'failed' && Date.now() < deadline);
    expect(view.status).toBe('purged');
    expect(view.report!.signatureValid).toBe(true);
    expect(view.report!.operator).toBe(`console staff ${g.staff.id}: test purge of a throwaway`);
    const { rows } = await g.db.admin.query('select count(*)::int as n from recordings where tenant_id = $1', [
      throwaway.id,
    ]);
    expect(rows[0].n).toBe(0);
    expect(await g.recordingsOf(g.a)).toEqual(alphaBefore);
    // the console's audit outlives the tenant: every purge attempt, with its outcome
    const { rows: audit } = await g.db.admin.query<{ action: string; outcome: string; code: string | null }>(
      `select action, outcome, code from app_private.console_audit where target_tenant_id = $1 order by id`,
      [throwaway.id],
    );
    expect(audit).toEqual([
      { action: 'purge', outcome: 'refused', code: 'TENANT_NOT_DELETED' },
      { action: 'purge', outcome: 'refused', code: 'PURGE_RETENTION' },
      { action: 'purge', outcome: 'refused', code: 'PURGE_CONFIRMATION_REQUIRED' },
      { action: 'purge', outcome: 'started', code: null },
    ]);
  }, 120_000);

  it('a purge begun and abandoned midway (a crash after the 202) is finished by resumeOpen at the next start', async () => {
    const g = purged;
    const crashed = await g.catalog.create({ slug: 'crashed-purge', name: 'Crashed' });
    await g.catalog.softDelete(crashed.id);
    const alphaBefore = await g.recordingsOf(g.a);
    // a purger that dies after its first step (the fence): the record stays open, as after kill -9
    const dying = new TenantPurger({
      catalog: g.db.owner,
      owners: { home: g.db.ownerUrl },
      participants: [outboxPurgeParticipant(g.db.owner)],
      onProgress: () => {
        throw new Error('killed');
      },
    });
    try {
      await expect(
        dying.run(crashed.id, {
          confirm: 'crashed-purge',
          operator: 'console staff x: crash test',
          ignoreRetention: true,
        }),
      ).rejects.toThrow('killed');
    } finally {
      await dying.end();
    }
    const res = await g.call('POST', '/console/api/sign-in', { payload: { email: g.staff.email, password: PASSWORD } });
    const headers = { cookie: String(res.headers['set-cookie']).split(';')[0]!, 'x-csrf-token': res.json().csrfToken };
    const open = (await g.call('GET', '/console/api/tenants/crashed-purge/purge', { headers })).json();
    expect(open.status).toBe('deleted');
    expect(open.plan.resumes).toEqual(expect.any(String));
    const { resumed, failed } = await purger!.resumeOpen();
    expect(failed).toEqual([]);
    expect(resumed).toEqual([open.plan.resumes]);
    const view = (await g.call('GET', '/console/api/tenants/crashed-purge/purge', { headers })).json();
    expect(view.status).toBe('purged');
    expect(view.report.signatureValid).toBe(true);
    expect(view.report.purgeId).toBe(open.plan.resumes);
    expect(view.report.operator).toBe('console staff x: crash test');
    // nothing left open, and the other tenant kept everything
    expect(await purger!.resumeOpen()).toEqual({ resumed: [], failed: [] });
    expect(await g.recordingsOf(g.a)).toEqual(alphaBefore);
  }, 120_000);
});
