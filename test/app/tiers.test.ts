// The reference server serving tenants in every tier, on three real PostgreSQL servers: the
// identity (users, memberships, sessions) stays in the home database; each tenant's recordings
// and events live where the tenant lives (the home's shared tables, a schema at home, the shared
// tables of a second server, a database on a third), reached through a RoutedTenantPool. Tenants
// try each other's recordings in every pair of placements; one is moved under load through the
// server; live events reach subscribers from every placement.
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  RoutedTenantPool,
  runAs,
  Sessions,
  StaffDirectory,
  TenantCatalog,
  TenantPool,
  TenantRouter,
  type PlacementTarget,
} from '../../src/index.js';
import { PostgresLiveTransport, TenantEventBus } from '../../src/live/index.js';
import type { QueryGuard } from '../../src/guard/index.js';
import { buildServer } from '../../app/server.js';
import { ensureExtensions, migrate } from '../../app/migrate.js';
import { createQueryGuard } from '../../app/query-guard.js';
import { TokenService } from '../../app/auth/token-service.js';
import { addMember, createUser } from '../../app/identity/users.js';
import { TenantTiers, type ClusterUrls } from '../../app/tiers/tenant-tiers.js';
import { useTestClusters, type ClusterDatabase } from '../support/clusters.js';
import { ROLE_PASSWORD } from '../support/test-database.js';
import { SseClient } from '../live/support/sse-client.js';
import { dropDatabase } from '../support/drop-database.js';

const fleet = useTestClusters(3);
const PASSWORD = 'correct horse battery staple';
// tenant databases are made by the code under test, not by the harness: named per run, dropped at the end
const RUN = randomBytes(3).toString('hex');
const TENANT_DATABASES = [`tenant_db_${RUN}`, `tenant_mover_${RUN}`];

/** Where each test tenant lives. `c3` holds tenant databases only (its shared database stays empty). */
const PLACES = {
  shared: { tier: 'shared', cluster: 'home' },
  schema: { tier: 'schema', cluster: 'home', schema: 't_schema' },
  remote: { tier: 'shared', cluster: 'c2' },
  remoteschema: { tier: 'schema', cluster: 'c2', schema: 't_remoteschema' },
  database: { tier: 'database', cluster: 'c3', database: TENANT_DATABASES[0]! },
} satisfies Record<string, PlacementTarget>;
type Place = keyof typeof PLACES;
const NAMES = Object.keys(PLACES) as Place[];

interface Tenant {
  id: string;
  slug: string;
  owner: string;
  token: string;
}

let home: ClusterDatabase;
const shared: Record<string, ClusterDatabase> = {};
let tiers: TenantTiers;
let router: TenantRouter;
let routesPool: pg.Pool;
let appPool: TenantPool;
let dataPool: RoutedTenantPool;
let supportPool: TenantPool;
let guard: QueryGuard;
let bus: TenantEventBus;
let app: FastifyInstance;
let url: string;
let tokens: TokenService;
let sessions: Sessions;
const tenants = {} as Record<Place, Tenant>;
const clients: SseClient[] = [];

function call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', path: string, token?: string, payload?: unknown) {
  return app.inject({
    method,
    url: path,
    headers: token ? { authorization: `Bearer ${token}` } : {},
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
}

/** Every column of a tenant's recordings where it lives, read as the superuser (the ground truth). */
async function recordingsAt(where: PlacementTarget, tenantId: string): Promise<Array<Record<string, unknown>>> {
  const table = where.tier === 'schema' ? `${where.schema}.recordings` : 'public.recordings';
  if (where.tier === 'database') {
    const client = new pg.Client({ connectionString: fleet().clusters[2]!.url(where.database!) });
    await client.connect();
    try {
      return (await client.query(`select * from ${table} where tenant_id = $1 order by id`, [tenantId])).rows;
    } finally {
      await client.end();
    }
  }
  const db = where.cluster === 'home' ? home : shared[where.cluster]!;
  return (await db.admin.query(`select * from ${table} where tenant_id = $1 order by id`, [tenantId])).rows;
}

async function newTenant(slug: string, place: PlacementTarget): Promise<Tenant> {
  const tenant = await new TenantCatalog(home.owner).create({ slug, name: slug });
  const owner = await createUser(home.owner, { email: `${slug}@example.test`, password: PASSWORD, displayName: slug });
  await addMember(home.owner, tenant.id, owner, 'owner');
  // a new tenant goes straight to its placement: preparing the location and moving nothing is the provisioning
  if (place.tier !== 'shared' || place.cluster !== 'home') await tiers.move(tenant.id, place);
  const { sessionId } = await sessions.start({ userId: owner, tenantId: tenant.id, kind: 'user', ttlSeconds: 3600 });
  return { id: tenant.id, slug, owner, token: await tokens.issue({ userId: owner, tenantId: tenant.id, sessionId }) };
}

beforeAll(async () => {
  const [c1, c2, c3] = fleet().clusters;
  home = await c1!.createDatabase('app', { supportRole: true });
  shared.c2 = await c2!.createDatabase('app', { supportRole: true });
  shared.c3 = await c3!.createDatabase('app', { supportRole: true });
  await ensureExtensions(home.adminUrl);
  await migrate(home.owner, { appRole: home.appRole });
  const roles = fleet().roles;
  const urls = (db: ClusterDatabase, cluster: number): ClusterUrls => ({
    ownerUrl: db.ownerUrl,
    appUrl: db.appUrl,
    adminUrl: fleet().clusters[cluster]!.url('postgres'),
  });
  tiers = new TenantTiers({
    clusters: { home: urls(home, 0), c2: urls(shared.c2, 1), c3: urls(shared.c3, 2) },
    install: {
      appRole: roles.app,
      ownerRole: roles.owner,
      supportRole: roles.support,
      appPassword: ROLE_PASSWORD,
      ownerPassword: ROLE_PASSWORD,
      supportPassword: ROLE_PASSWORD,
      contextSecret: fleet().contextSecret,
    },
  });
  await tiers.migrateData();

  guard = await createQueryGuard(home.owner, { mode: 'enforce' });
  appPool = home.appPool({ guard });
  supportPool = new TenantPool({ connectionString: home.supportUrl!, contextSecret: fleet().contextSecret, max: 2 });
  routesPool = new pg.Pool({ connectionString: home.routerUrl, max: 2 });
  router = new TenantRouter({ pool: routesPool, listenConnectionString: home.routerUrl });
  await router.start();
  dataPool = new RoutedTenantPool({
    router,
    clusters: { home: home.appUrl, c2: shared.c2.appUrl, c3: shared.c3.appUrl },
    contextSecret: fleet().contextSecret,
    maxConnections: 8,
    freezeWaitMs: 15_000,
    guard,
  });
  bus = new TenantEventBus({
    pool: dataPool,
    schema: null,
    transport: new PostgresLiveTransport({ connectionString: home.appUrl, databaseRings: false }),
  });
  const jwtSecret = randomBytes(32).toString('base64url');
  tokens = new TokenService(jwtSecret);
  sessions = new Sessions(home.owner);
  app = buildServer({
    appPool,
    dataPool,
    supportPool,
    jwtSecret,
    events: { bus },
    // GET /usage and /usage/events read every database the tenant lives or lived in
    usageEverywhere: {
      catalog: home.owner,
      ownerPool: (where) =>
        tiers.placements.ownerPool({ tier: where.database ? 'database' : 'shared', ...where } as PlacementTarget),
    },
  });
  app.addHook('onError', async (_request, _reply, error) => {
    if (process.env.TIERS_DEBUG) console.error(error);
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  for (const name of NAMES) tenants[name] = await newTenant(name, PLACES[name]);
}, 240_000);

afterAll(async () => {
  for (const client of clients) client.close();
  await app?.close();
  await bus?.close();
  await dataPool?.end();
  await router?.close();
  await routesPool?.end();
  await supportPool?.end();
  await tiers?.end();
  const root = new pg.Client({ connectionString: fleet().clusters[2]!.url('postgres') });
  await root.connect();
  for (const name of TENANT_DATABASES) await dropDatabase(root, name);
  await root.end();
  // every statement the server sent named its tenant: the guard (enforce) refused nothing
  expect(guard?.report() ?? []).toEqual([]);
});

describe('each tenant is served from where it lives', () => {
  const created: Partial<Record<Place, string>> = {};

  it.each(NAMES)('%s: create, list, read, change and delete recordings through the server', async (name) => {
    const t = tenants[name];
    const made = await call('POST', '/recordings', t.token, {
      title: `${name} secret`,
      durationSeconds: 42,
      mimeType: 'audio/ogg',
    });
    expect(made.statusCode).toBe(201);
    const id = made.json<{ id: string }>().id;
    created[name] = id;
    const list = await call('GET', '/recordings', t.token);
    expect(list.json<{ items: Array<{ id: string; title: string }> }>().items.map((r) => r.title)).toEqual([
      `${name} secret`,
    ]);
    expect((await call('PATCH', `/recordings/${id}`, t.token, { title: `${name} secret v2` })).statusCode).toBe(200);
    expect((await call('GET', `/recordings/${id}`, t.token)).json<{ title: string }>().title).toBe(`${name} secret v2`);
    // physically where the placement says, and nowhere else
    const here = await recordingsAt(PLACES[name], t.id);
    expect(here.map((r) => r.title)).toEqual([`${name} secret v2`]);
    if (name !== 'shared') expect(await recordingsAt(PLACES.shared, t.id)).toEqual([]);
    const scratch = (
      await call('POST', '/recordings', t.token, { title: 'to delete', durationSeconds: 1, mimeType: 'audio/ogg' })
    ).json<{ id: string }>().id;
    expect((await call('DELETE', `/recordings/${scratch}`, t.token)).statusCode).toBe(204);
    expect((await recordingsAt(PLACES[name], t.id)).length).toBe(1);
  });

  it('the memberships stayed home: /me answers for every tenant, whatever its tier', async () => {
    for (const name of NAMES) {
      const me = await call('GET', '/me', tenants[name].token);
      expect(me.statusCode).toBe(200);
      expect(JSON.stringify(me.json())).toContain(tenants[name].slug);
    }
    const { rows } = await home.admin.query<{ n: number }>(
      'select count(*)::int as n from public.members where tenant_id = any($1)',
      [NAMES.map((n) => tenants[n].id)],
    );
    expect(rows[0]!.n).toBe(NAMES.length);
  });

  it.each(NAMES.flatMap((a) => NAMES.filter((b) => b !== a).map((b) => [a, b] as const)))(
    "%s's recording is not there for %s",
    async (a, b) => {
      const id = created[a]!;
      const before = await recordingsAt(PLACES[a], tenants[a].id);
      const token = tenants[b].token;
      expect((await call('GET', `/recordings/${id}`, token)).statusCode).toBe(404);
      expect((await call('PATCH', `/recordings/${id}`, token, { title: 'overwritten' })).statusCode).toBe(404);
      expect((await call('DELETE', `/recordings/${id}`, token)).statusCode).toBe(404);
      const list = (await call('GET', '/recordings', token)).json<{ items: Array<{ id: string }> }>();
      expect(list.items.map((r) => r.id)).not.toContain(id);
      expect(await recordingsAt(PLACES[a], tenants[a].id)).toEqual(before);
    },
  );

  it('no tenant, a forged token, or another tenant named by the token: refused', async () => {
    const id = created.database!;
    expect((await call('GET', `/recordings/${id}`)).statusCode).toBe(401);
    const forged = new TokenService(randomBytes(32).toString('base64url'));
    const fake = await forged.issue({
      userId: tenants.database.owner,
      tenantId: tenants.database.id,
      sessionId: crypto.randomUUID(),
    });
    expect((await call('GET', `/recordings/${id}`, fake)).statusCode).toBe(401);
    // a genuine session of the shared tenant's owner, but the token names the database tenant: not a member there
    const { sessionId } = await sessions.start({
      userId: tenants.shared.owner,
      tenantId: tenants.database.id,
      kind: 'user',
      ttlSeconds: 60,
    });
    const stranger = await tokens.issue({ userId: tenants.shared.owner, tenantId: tenants.database.id, sessionId });
    expect((await call('GET', `/recordings/${id}`, stranger)).statusCode).toBe(403);
  });

  it('raw SQL through the data pool, as another tenant, reaches nothing of the database tenant', async () => {
    const id = created.database!;
    // the remote tenant's statements go to its own placement (c2): the row is simply not there
    const seen = await runAs(tenants.remote.id, () =>
      dataPool.query('select id from recordings where id = $1 and tenant_id = (select tenantry.current_tenant_id())', [
        id,
      ]),
    );
    expect(seen.rows).toEqual([]);
    // even naming the other tenant outright (bypassing the guard with a statement it accepts) reads nothing
    const named = await runAs(tenants.remote.id, () =>
      dataPool.query('select id from recordings where tenant_id = $1', [tenants.database.id]),
    );
    expect(named.rows).toEqual([]);
  });
});

describe('a tenant moved while the server writes for it', () => {
  it('moves shared (home) → its own database on c3 → the shared tables of c2, losing and duplicating nothing', async () => {
    const t = await newTenant('mover', PLACES.shared);
    const acked: string[] = [];
    const failures: string[] = [];
    let stop = false;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        const res = await call('POST', '/recordings', t.token, {
          title: `w${i}`,
          durationSeconds: i,
          mimeType: 'audio/ogg',
        });
        if (res.statusCode === 201) acked.push(`w${i}`);
        else failures.push(`${res.statusCode} ${res.body}`);
      }
    })();
    const reads: number[] = [];
    const reader = (async () => {
      while (!stop) reads.push((await call('GET', '/recordings?limit=1', t.token)).statusCode);
    })();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const first: PlacementTarget = { tier: 'database', cluster: 'c3', database: TENANT_DATABASES[1]! };
      expect((await tiers.move(t.id, first)).step).toBe('done');
      await new Promise((r) => setTimeout(r, 300));
      expect((await tiers.move(t.id, PLACES.remote)).step).toBe('done');
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      stop = true;
      await Promise.all([writer, reader]);
    }
    expect(failures).toEqual([]);
    expect(reads.every((s) => s === 200)).toBe(true);
    const titles = (await recordingsAt(PLACES.remote, t.id)).map((r) => r.title as string).sort();
    expect(titles).toEqual([...acked].sort());
    expect(acked.length).toBeGreaterThan(5);
    // one event per write, carried along as rows: the copies made by the moves emitted none (tenantry.moving)
    const { rows: events } = await shared.c2!.admin.query<{ topic: string; n: number }>(
      `select topic, count(*)::int as n from public.tenant_events where tenant_id = $1 group by topic`,
      [t.id],
    );
    expect(events).toEqual([{ topic: 'recording.created', n: acked.length }]);
    // the memberships did not move; the server still answers /me from home
    expect((await call('GET', '/me', t.token)).statusCode).toBe(200);
  }, 120_000);
});

describe('live events from every placement', () => {
  it('each subscriber gets its own tenant’s events, and only those', async () => {
    const streams = {} as Record<Place, SseClient>;
    for (const name of NAMES) {
      const client = new SseClient(url, { token: tenants[name].token });
      clients.push(client);
      await client.response;
      streams[name] = client;
    }
    const ids = {} as Record<Place, string>;
    for (const name of NAMES) {
      ids[name] = (
        await call('POST', '/recordings', tenants[name].token, {
          title: `live ${name}`,
          durationSeconds: 1,
          mimeType: 'audio/ogg',
        })
      ).json<{ id: string }>().id;
    }
    for (const name of NAMES) {
      const s = streams[name];
      await s.until(() => s.events.some((e) => e.data.topic === 'recording.created' && e.data.data.id === ids[name]));
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const name of NAMES) {
      const foreign = NAMES.filter((n) => n !== name).map((n) => ids[n]);
      expect(streams[name].events.filter((e) => foreign.includes(e.data.data.id as string))).toEqual([]);
    }
  });
});

describe('staff', () => {
  it("a support summary counts a placed tenant's members (home) and says its data is not readable from home", async () => {
    const staffUser = await createUser(home.owner, {
      email: 'staff@example.test',
      password: PASSWORD,
      displayName: 'Staff',
    });
    await new StaffDirectory(home.owner).add(staffUser);
    const { sessionId } = await sessions.start({ userId: staffUser, kind: 'staff', ttlSeconds: 600 });
    const staffToken = await tokens.issueStaff({ userId: staffUser, sessionId });
    const reason = 'Ticket 42: checking the account';
    expect(
      (
        await call('POST', '/recordings', tenants.shared.token, {
          title: 'for the summary',
          durationSeconds: 1,
          mimeType: 'audio/ogg',
        })
      ).statusCode,
    ).toBe(201);
    const placed = await call('POST', '/staff/tenants/database/summary', staffToken, { reason });
    expect(placed.statusCode).toBe(200);
    expect(placed.json()).toMatchObject({ members: 1, recordings: null, dataReadable: false });
    const local = await call('POST', '/staff/tenants/shared/summary', staffToken, { reason });
    expect(local.json()).toMatchObject({ members: 1, dataReadable: true });
    expect(local.json<{ recordings: number }>().recordings).toBeGreaterThanOrEqual(1);

    // acting as a tenant in its own database: the grant is checked at home, the data read where it lives
    const asIs = (token: string) =>
      app.inject({
        method: 'GET',
        url: '/recordings',
        headers: { authorization: `Bearer ${token}`, 'x-tenant': 'database' },
      });
    expect((await asIs(staffToken)).statusCode).toBe(403);
    const grant = await call('POST', '/staff/access', staffToken, { tenant: 'database', reason, minutes: 5 });
    expect(grant.statusCode).toBe(201);
    const seen = await asIs(staffToken);
    expect(seen.statusCode).toBe(200);
    const truth = await recordingsAt(PLACES.database, tenants.database.id);
    expect(
      seen
        .json<{ items: Array<{ id: string }> }>()
        .items.map((r) => r.id)
        .sort(),
    ).toEqual(truth.map((r) => r.id as string).sort());
    // and the audit log at home records the staff request, with its reason
    const { rows } = await home.admin.query<{ n: number }>(
      `select count(*)::int as n from tenantry.audit_log where tenant_id = $1 and actor_kind = 'staff'`,
      [tenants.database.id],
    );
    expect(rows[0]!.n).toBeGreaterThan(0);
  });
});

describe('usage follows the tenant to where it lives', () => {
  const range = () => {
    const from = new Date(Date.now() - 3600_000).toISOString();
    const to = new Date(Date.now() + 3600_000).toISOString();
    return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  };
  const rowsWritten = (lines: Array<{ type: string; subject: string; data: { quantity: number } }>) =>
    lines.filter((e) => e.type.endsWith('rows_written')).reduce((n, e) => n + e.data.quantity, 0);

  it.each(['database', 'remote'] as const)(
    '%s: GET /usage/events counts the rows written where it lives, as GET /usage does; no other tenant in it',
    async (name) => {
      const t = tenants[name];
      for (let i = 0; i < 2; i++)
        expect(
          (
            await call('POST', '/recordings', t.token, {
              title: `metered ${i}`,
              durationSeconds: 1,
              mimeType: 'audio/ogg',
            })
          ).statusCode,
        ).toBe(201);
      const report = await call('GET', `/usage?${range()}`, t.token);
      expect(report.statusCode, report.body).toBe(200);
      const reported = (report.json<{ items: Array<{ meter: string; quantity: number }> }>().items ?? [])
        .filter((i) => i.meter === 'rows_written')
        .reduce((n, i) => n + i.quantity, 0);
      expect(reported).toBeGreaterThanOrEqual(2);
      const events = await call('GET', `/usage/events?${range()}`, t.token);
      expect(events.statusCode, events.body).toBe(200);
      const lines = events.body
        .trim()
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as { type: string; subject: string; data: { quantity: number } });
      expect(lines.every((e) => e.subject === t.id)).toBe(true);
      expect(rowsWritten(lines)).toBe(reported);
    },
  );
});
