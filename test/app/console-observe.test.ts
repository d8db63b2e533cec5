import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs, type PlacementsAudit } from '../../src/index.js';
import { consoleDoctorRoutes } from '../../app/console/console-doctor.js';
import { usageWindows } from '../../app/console/console-usage.js';
import { installErrorHandler } from '../../app/http/error-handler.js';
import { createAppFixture, PASSWORD, type AppFixture } from './support/app-fixture.js';

/**
 * The console's observation routes (app/console/console-observe.ts): a tenant's usage over time,
 * the tenants list sorted by usage, top tenants now with the placement policy's advice, clusters
 * and their load, and the doctor. Staff only (the console's cookie), bad input a 400, never a 5xx.
 */
let f: AppFixture;
let session: { cookie: string; csrf: string };
const HOUR = 3_600_000;

beforeAll(async () => {
  f = await createAppFixture({
    console: { observe: (db) => ({ clusterUrls: { home: db.adminUrl, far: 'postgres://u:secret@127.0.0.1:1/none' } }) },
  });
  // a second cluster the console has a URL of, where nothing listens: shown with its error, not waited for
  await f.db.admin.query(`insert into tenantry.clusters (name) values ('far')`);
  const res = await f.call('POST', '/console/api/sign-in', { payload: { email: f.staff.email, password: PASSWORD } });
  session = { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken as string };
}, 120_000);
afterAll(async () => {
  await f?.close();
});

function get(url: string, s: typeof session | null = session) {
  return f.call('GET', url, { headers: s ? { cookie: s.cookie } : {} });
}

async function usageEvent(tenantId: string, meter: string, quantity: number, hoursAgo: number, key: string) {
  await f.db.admin.query(
    `insert into tenantry.usage_events (tenant_id, idempotency_key, meter, quantity, subject, occurred_at)
     values ($1, $2, $3, $4, $5, now() - make_interval(secs => $6))`,
    [tenantId, key, meter, quantity, meter === 'storage_bytes' ? 'recordings' : null, hoursAgo * 3600],
  );
}

describe('staff only', () => {
  it('every new route needs the console cookie: 401 without, 401 with a member token', async () => {
    const memberToken = await f.token(f.users.alice, f.a);
    for (const url of [
      `/console/api/tenants/${f.a.slug}/usage`,
      '/console/api/top',
      '/console/api/clusters/load',
      '/console/api/doctor',
    ]) {
      expect((await get(url, null)).statusCode, url).toBe(401);
      const member = await f.call('GET', url, { headers: { cookie: `tenantry_console=${memberToken}` } });
      // a token of the API's audience: the console's verifier refuses it (console-admin.test.ts)
      expect(member.statusCode, url).toBe(401);
    }
    // the tenant's own usage route does not name another tenant either: a bearer token is not a console session
    expect((await f.call('GET', '/console/api/top', { token: await f.staffToken() })).statusCode).toBe(401);
  });
});

describe('usage over time', () => {
  beforeAll(async () => {
    await usageEvent(f.a.id, 'requests', 5, 0, 'r1');
    await usageEvent(f.a.id, 'requests', 7, 2, 'r2');
    await usageEvent(f.a.id, 'db_time_us', 250_000, 0, 'd1');
    await usageEvent(f.a.id, 'storage_bytes', 4096, 1, 's1');
    await usageEvent(f.a.id, 'requests', 100, 24 * 10, 'old'); // ten days ago: in 30 d only
    await f.db.admin.query(
      `insert into tenantry.usage_row_deltas (tenant_id, table_name, op, rows, at) values ($1, 'recordings', 'i', 3, now())`,
      [f.a.id],
    );
  });

  it("answers the tenant's metered usage per hour over 24 h, zeros included", async () => {
    const res = await get(`/console/api/tenants/${f.a.slug}/usage?range=24h`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.granularity).toBe('hour');
    expect(body.empty).toBe(false);
    expect(body.windows).toHaveLength(24);
    const sum = (k: string) => body.windows.reduce((n: number, w: Record<string, number>) => n + w[k]!, 0);
    expect(sum('requests')).toBe(12);
    expect(sum('dbTimeMs')).toBe(250);
    expect(sum('rowsWritten')).toBe(3);
    expect(sum('storageBytes')).toBe(4096);
    expect(body.windows.at(-1).requests).toBe(5); // the newest window holds now
  });

  it('7 d is hourly, 30 d daily and reaches further back', async () => {
    const week = (await get(`/console/api/tenants/${f.a.id}/usage?range=7d`)).json();
    expect(week.windows).toHaveLength(168);
    const month = (await get(`/console/api/tenants/${f.a.slug}/usage?range=30d`)).json();
    expect(month.granularity).toBe('day');
    expect(month.windows).toHaveLength(30);
    expect(month.windows.reduce((n: number, w: { requests: number }) => n + w.requests, 0)).toBe(112);
  });

  it("another tenant's page shows none of it: empty, every window zero", async () => {
    const res = await get(`/console/api/tenants/${f.b.slug}/usage?range=30d`);
    expect(res.statusCode).toBe(200);
    expect(res.json().empty).toBe(true);
    for (const w of res.json().windows)
      expect([w.requests, w.dbTimeMs, w.rowsWritten, w.storageBytes]).toEqual([0, 0, 0, 0]);
    // and alpha's rows are still all there
    const { rows } = await f.db.admin.query(
      'select count(*)::int as n from tenantry.usage_events where tenant_id = $1',
      [f.a.id],
    );
    expect(rows[0].n).toBe(5);
  });

  it('bad input is a 400 with a code; an unknown tenant a 404', async () => {
    for (const url of [
      `/console/api/tenants/${f.a.slug}/usage?range=1y`,
      `/console/api/tenants/${f.a.slug}/usage?range=24h&from=2020-01-01`,
      `/console/api/tenants/${f.a.slug}/usage?range=%00`,
      `/console/api/tenants/NOT%20A%20SLUG/usage`,
    ]) {
      const res = await get(url);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    const missing = await get('/console/api/tenants/no-such-tenant/usage');
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('TENANT_NOT_FOUND');
  });

  it('fills windows without interpolating', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    const to = new Date(from.getTime() + 3 * HOUR);
    const w = usageWindows(
      [{ windowStart: new Date(from.getTime() + HOUR), meter: 'db_time_us', quantity: 1500 }],
      from,
      to,
      HOUR,
    );
    expect(w.map((x) => x.dbTimeMs)).toEqual([0, 1.5, 0]);
  });
});

describe('tenants sorted by usage', () => {
  it('sorts by requests and DB time over the last 24 h, busiest first, and says how much', async () => {
    await usageEvent(f.b.id, 'db_time_us', 9_000_000, 1, 'bd1');
    const byRequests = (await get('/console/api/tenants?sort=requests')).json().tenants;
    expect(byRequests[0].slug).toBe('alpha');
    expect(byRequests[0].requests24h).toBe(12); // the ten-day-old 100 is not in it
    const byDbTime = (await get('/console/api/tenants?sort=dbTime')).json().tenants;
    expect(byDbTime[0].slug).toBe('bravo');
    expect(byDbTime[0].dbTimeMs24h).toBe(9000);
    const bad = await get('/console/api/tenants?sort=storage');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
  });
});

describe('top tenants now', () => {
  it('ranks tenants by published DB time with statements, rows, waits and connections, and the advice', async () => {
    await f.db.admin.query(
      `insert into tenantry_private.tenant_activity
         (instance, tenant_key, window_start, window_end, db_time_ms, statements, rows, errors, timeouts, checkouts, waits, wait_ms, connections)
       values ('test:1', $1, now() - interval '20 s', now() - interval '5 s', 900, 120, 4000, 0, 2, 120, 10, 800, 3),
              ('test:1', $2, now() - interval '20 s', now() - interval '5 s', 100, 30, 50, 0, 0, 30, 0, 0, 1),
              ('test:1', '', now() - interval '20 s', now() - interval '5 s', 5, 3, 0, 0, 0, 3, 0, 0, 0),
              ('test:1', $1, now() - interval '3 h', now() - interval '3 h' + interval '15 s', 99999, 1, 1, 0, 0, 1, 0, 0, 9),
              -- an instance killed two minutes ago: its windows are in the 15 minutes, but it runs no more
              ('test:killed', $1, now() - interval '135 s', now() - interval '120 s', 0, 0, 0, 0, 0, 0, 0, 0, 7)`,
      [f.a.id, f.b.id],
    );
    const res = await get('/console/api/top?window=15');
    expect(res.statusCode, res.body).toBe(200);
    const top = res.json();
    // the killed instance is not counted as publishing, nor the connections it held
    expect(top.instances).toBe(1);
    expect(top.staleInstances).toBe(1);
    expect(top.tenants.map((t: { slug: string }) => t.slug)).toEqual(['alpha', 'bravo']); // no "(no tenant)" line
    const alpha = top.tenants[0];
    expect(alpha).toMatchObject({ dbTimeMs: 900, statements: 120, rows: 4000, timeouts: 2, waits: 10, connections: 3 });
    expect(alpha.dbShare).toBeCloseTo(900 / 1005, 3);
    // the placement policy: alpha, with most of the DB time and in the shared tier, should get a database of its own
    expect(top.moves).toHaveLength(1);
    expect(top.moves[0].slug).toBe('alpha');
    expect(top.moves[0].target.tier).toBe('database');
    expect(['home', 'far']).toContain(top.moves[0].target.cluster);
    expect(top.advice.join('\n')).toMatch(/alpha used 90 % of DB time in the last 15 min: move it to its own database/);
    expect(top.advice.join('\n')).toMatch(/alpha hit its statement or lock timeout 2 time/);
    expect(top.advice.join('\n')).toMatch(/alpha waited 80 ms on average/);
  });

  it("says the live columns are unavailable (not 0) when its role cannot read the app role's backends", async () => {
    await f.db.admin.query(`revoke pg_read_all_stats from ${f.db.ownerRole}`);
    const pool = f.db.appPool({ max: 1, activityTag: true });
    try {
      const running = runAs(f.a.id, () => pool.query('select pg_sleep(1)'));
      await new Promise((r) => setTimeout(r, 300));
      const blind = (await get('/console/api/top?window=15')).json();
      expect(blind.liveUnavailable).toMatch(/cannot read other roles' activity.*GRANT pg_read_all_stats TO/);
      await f.db.admin.query(`grant pg_read_all_stats to ${f.db.ownerRole}`);
      const seeing = (await get('/console/api/top?window=15')).json();
      expect(seeing.liveUnavailable).toBeUndefined();
      expect(seeing.tenants.find((t: { slug: string }) => t.slug === 'alpha').activeNow).toBe(1);
      await running;
    } finally {
      await f.db.admin.query(`grant pg_read_all_stats to ${f.db.ownerRole}`);
      await pool.end();
    }
  });

  it('bad input is a 400, never a 5xx', async () => {
    for (const q of ['window=7', 'window=abc', 'limit=0', 'limit=101', 'limit=1e400', 'x=1']) {
      const res = await get(`/console/api/top?${q}`);
      expect(res.statusCode, q).toBe(400);
      expect(res.json().error.code).toBe('VALIDATION_FAILED');
    }
    expect((await get('/console/api/top?window=60&limit=1')).json().tenants).toHaveLength(1);
  });
});

describe('clusters and their load', () => {
  it('counts live tenants per tier, asks each cluster for connections and size, and names a silent one', async () => {
    const res = await get('/console/api/clusters/load');
    expect(res.statusCode, res.body).toBe(200);
    const clusters = res.json().clusters as Array<Record<string, unknown>>;
    const home = clusters.find((c) => c.name === 'home')!;
    expect(home.tiers).toEqual({ shared: 2, schema: 0, database: 0 });
    expect(home.tenants).toBe(2);
    expect(home.connections as number).toBeGreaterThan(0);
    expect(home.databaseBytes as number).toBeGreaterThan(1_000_000);
    expect(home.error).toBeNull();
    const far = clusters.find((c) => c.name === 'far')!;
    expect(far.tenants).toBe(0);
    expect(far.connections).toBeNull();
    expect(far.error).toBe('connection refused');
    expect(res.body).not.toContain('secret'); // the URL's password never leaves the server
  });
});

describe('the doctor', () => {
  it('runs on demand (CSRF required), in the background, and answers findings per placement with their fixes', async () => {
    const noCsrf = await f.call('POST', '/console/api/doctor', { headers: { cookie: session.cookie } });
    expect(noCsrf.statusCode).toBe(403);
    expect(noCsrf.json().error.code).toBe('CSRF_REFUSED');
    expect((await get('/console/api/doctor')).json().state).toBe('idle');

    const started = await f.call('POST', '/console/api/doctor', {
      headers: { cookie: session.cookie, 'x-csrf-token': session.csrf },
    });
    expect(started.statusCode).toBe(202);
    expect(started.json().state).toBe('running');
    let run = started.json();
    for (let i = 0; i < 600 && run.state === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      run = (await get('/console/api/doctor')).json();
    }
    expect(run.state).toBe('done');
    const home = run.audit.databases.find((d: { cluster: string }) => d.cluster === 'home');
    expect(home.error).toBeNull();
    for (const finding of home.report.findings) {
      expect(['error', 'warning']).toContain(finding.severity);
      expect(typeof finding.fix).toBe('string');
    }
    const far = run.audit.databases.find((d: { cluster: string }) => d.cluster === 'far');
    if (far) expect(far.error).not.toContain('secret');
    expect(typeof run.errors).toBe('number');
  }, 90_000);

  it('a run past its bound is reported timed-out; one run at a time', async () => {
    const app = Fastify();
    installErrorHandler(app);
    let calls = 0;
    const never = new Promise<PlacementsAudit>(() => undefined);
    consoleDoctorRoutes(app, {
      catalogPool: f.db.owner,
      doctor: {
        clusters: {},
        timeoutMs: 100,
        run: () => {
          calls++;
          return never;
        },
      },
      onError: () => undefined,
    });
    const first = await app.inject({ method: 'POST', url: '/console/api/doctor' });
    expect(first.json().state).toBe('running');
    await new Promise((r) => setTimeout(r, 250));
    const after = (await app.inject({ method: 'GET', url: '/console/api/doctor' })).json();
    expect(after.state).toBe('timed-out');
    expect(after.error).toMatch(/longer than 100 ms/);
    await app.inject({ method: 'POST', url: '/console/api/doctor' });
    expect(calls).toBe(1); // the first audit has not ended: no second one beside it
    await app.close();
  });
});
