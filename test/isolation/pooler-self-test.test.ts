// The pooler self-test: direct connections are told apart from pgbouncer in transaction pooling
// (run through pgbouncer by `scripts/pgbouncer.sh run -- npx vitest run test/isolation`, the CI's
// pgbouncer stage, where the app role's URL goes through it), the context prefix form follows
// from it, and it is bounded and never fails the pool.
import { createServer, type Server, type Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../../src/context/tenant-context.js';
import { detectPooler } from '../../src/data/pooler-self-test.js';
import type { TenantPoolLogger } from '../../src/data/tenant-pool.js';
import { RoutedTenantPool } from '../../src/tiers/routed-tenant-pool.js';
import { TenantRouter } from '../../src/tiers/tenant-router.js';
import { createNotesTable } from '../support/notes-table.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

const throughPgbouncer = process.env.TENANTRY_TEST_APP_PORT !== undefined;

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db);
  await db.owner.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'pst-a', 'A'), ($2, 'pst-b', 'B')`, [
    A,
    B,
  ]);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($1, 'a2'), ($2, 'b1')`, [A, B]);
});
afterAll(() => db?.drop());

/** A logger that records what it is told. */
function recorder() {
  const lines: { level: 'info' | 'warn'; details: object; message?: string }[] = [];
  const logger: TenantPoolLogger = {
    info: (details, message) => lines.push({ level: 'info', details, message }),
    warn: (details, message) => lines.push({ level: 'warn', details, message }),
  };
  return { lines, logger };
}

/** What a pool (TenantPool or RoutedTenantPool) answers for the tenant's notes. */
interface Queryable {
  query(text: string): Promise<pg.QueryResult>;
}
const bodies = async (pool: Queryable, tenant: string) =>
  (await runAs(tenant, () => pool.query('select body from notes order by body'))).rows.map(
    (r: { body: string }) => r.body,
  );

describe('a direct connection', () => {
  it('is "no pooler": one connection and one statement tell it', async () => {
    const info = await detectPooler(db.directAppUrl ?? db.appUrl);
    expect(info).toMatchObject({ pooler: 'none', mode: 'none', namedStatements: 'safe' });
    expect(info.evidence).toHaveLength(1);
    expect(info.serverVersion).toMatch(/^\d+/);
  });

  it('TenantPool: prepareContextStatement gets the named prefix, and the logger is told once', async () => {
    const { lines, logger } = recorder();
    const pool = db.appPool({ connectionString: db.directAppUrl, prepareContextStatement: true, logger, max: 2 });
    expect(await bodies(pool, A)).toEqual(['a1', 'a2']);
    expect(await bodies(pool, B)).toEqual(['b1']);
    const info = await pool.poolerInfo();
    expect(info).toMatchObject({ pooler: 'none', mode: 'none', prefix: 'named' });
    // the first statement already went with the named prefix: the first checkout waited for the answer
    const named = await runAs(A, () =>
      pool.query(`select count(*)::int as n from pg_prepared_statements where name = 'tenantry_context'`),
    );
    expect(named.rows[0].n).toBe(1);
    expect(lines.map((l) => l.level)).toEqual(['info']);
    expect(lines[0]!.message).toMatch(/no pooler \(direct connection\); context prefix named/);
    expect(await pool.poolerInfo()).toBe(info); // run once
  });
});

describe.skipIf(!throughPgbouncer)('through pgbouncer in transaction pooling (scripts/pgbouncer.sh)', () => {
  it('is detected: transaction pooling, pgbouncer identified, named statements judged', async () => {
    const info = await detectPooler(db.appUrl);
    expect(info).toMatchObject({ pooler: 'pgbouncer', mode: 'transaction' });
    expect(['safe', 'unsafe']).toContain(info.namedStatements);
    expect(info.durationMs).toBeLessThan(3000);
  });

  it('TenantPool: the named prefix only where safe, a warning otherwise, and isolation holds over many transactions', async () => {
    const { lines, logger } = recorder();
    const pool = db.appPool({ prepareContextStatement: true, logger, max: 4 });
    const info = await pool.poolerInfo();
    expect(info.mode).toBe('transaction');
    expect(info.prefix).toBe(info.namedStatements === 'safe' ? 'named' : 'unnamed');
    if (info.prefix === 'unnamed') expect(lines.some((l) => l.level === 'warn')).toBe(true);
    // concurrent tenants, many transactions on few server connections: every answer is the tenant's own
    const rounds = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? bodies(pool, A) : bodies(pool, B))),
    );
    rounds.forEach((got, i) => expect(got).toEqual(i % 2 === 0 ? ['a1', 'a2'] : ['b1']));
  });

  it('RoutedTenantPool: each location tests its own path', async () => {
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
    const router = new TenantRouter({ pool: home });
    await router.start();
    const routed = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
    try {
      expect(await bodies(routed, A)).toEqual(['a1', 'a2']);
      const infos = await routed.poolerInfo();
      expect(infos['home/']).toMatchObject({ location: 'home/', pooler: 'pgbouncer', mode: 'transaction' });
    } finally {
      await routed.end();
      await router.close();
      await home.end();
    }
  });
});

describe('RoutedTenantPool on a direct connection', () => {
  it.skipIf(throughPgbouncer)('reports each open location', async () => {
    const home = new pg.Pool({ connectionString: db.routerUrl, max: 2 });
    const router = new TenantRouter({ pool: home });
    await router.start();
    const routed = new RoutedTenantPool({ router, clusters: { home: db.appUrl }, contextSecret: db.contextSecret });
    try {
      expect(await routed.poolerInfo()).toEqual({});
      expect(await bodies(routed, A)).toEqual(['a1', 'a2']);
      expect(await routed.poolerInfo()).toEqual({
        'home/': expect.objectContaining({ location: 'home/', pooler: 'none', prefix: 'named', statements: 'named' }),
      });
    } finally {
      await routed.end();
      await router.close();
      await home.end();
    }
  });
});

describe('bounded, and never fails the pool', () => {
  let silent: Server;
  let port = 0;
  const sockets = new Set<Socket>();
  beforeAll(async () => {
    // accepts connections and never answers: a pooler that hangs
    silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('a server that never answers: unknown within the bound', async () => {
    const started = Date.now();
    const info = await detectPooler(`postgres://nobody@127.0.0.1:${port}/x`, { timeoutMs: 300 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(info).toMatchObject({ pooler: 'unknown', mode: 'unknown', namedStatements: 'unknown' });
    expect(info.evidence.at(-1)).toMatch(/did not finish within 300 ms/);
  });

  it('a refused connection: unknown, with the reason and nothing else', async () => {
    const info = await detectPooler(`postgres://nobody@127.0.0.1:1/x`, { timeoutMs: 1000 });
    expect(info).toMatchObject({ pooler: 'unknown', evidence: ['the self-test failed (ECONNREFUSED)'] });
  });

  it('a self-test that runs out of time: the pool starts with the unnamed prefix, and a throwing logger changes nothing', async () => {
    const logger: TenantPoolLogger = {
      info: () => {
        throw new Error('logger down');
      },
      warn: () => {
        throw new Error('logger down');
      },
    };
    const pool = db.appPool({ prepareContextStatement: true, poolerSelfTest: { timeoutMs: 1 }, logger, max: 2 });
    expect(await bodies(pool, A)).toEqual(['a1', 'a2']);
    expect(await pool.poolerInfo()).toMatchObject({ mode: 'unknown', prefix: 'unnamed' });
    expect(await bodies(pool, B)).toEqual(['b1']);
  });

  it('ending the pool stops a running self-test at once', async () => {
    const pool = db.appPool({ connectionString: `postgres://nobody@127.0.0.1:${port}/x`, max: 1 });
    const info = pool.poolerInfo();
    const started = Date.now();
    await pool.end();
    expect(await info).toMatchObject({ mode: 'unknown' });
    expect(Date.now() - started).toBeLessThan(1500);
  });

  it('poolerSelfTest: false runs nothing at start and keeps the prefix form as given', async () => {
    const since = (await db.admin.query<{ now: Date }>('select clock_timestamp() as now')).rows[0]!.now;
    const pool = db.appPool({
      connectionString: db.directAppUrl,
      prepareContextStatement: true,
      poolerSelfTest: false,
    });
    expect(await bodies(pool, A)).toEqual(['a1', 'a2']);
    // backends started since (pgbouncer's older server connections keep the last client's application_name)
    const seen = await db.admin.query(
      // this database's only: other test files run their own pools' self-tests meanwhile (CI run 30)
      `select count(*)::int as n from pg_stat_activity
        where application_name = $1 and backend_start >= $2 and datname = current_database()`,
      ['tenantry pooler self-test', since],
    );
    expect(seen.rows[0].n).toBe(0);
    expect(await pool.poolerInfo()).toMatchObject({ prefix: 'named' });
  });
});
