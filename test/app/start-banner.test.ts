import { describe, expect, it } from 'vitest';
import { databaseLine, startBanner, workerBanner, type BannerFacts } from '../../app/start-banner.js';

// The banner says what the server really uses, and its commands paste as they are (review
// findings 7, 8 and 9).

const facts: BannerFacts = {
  host: '127.0.0.1',
  port: 3000,
  baseDomain: 'localhost',
  dataFolder: '.tenantry',
  origin: { kind: 'embedded', dataDir: '/p/.tenantry/pgdata', port: 45123, recovered: {} },
  applied: [],
  seeded: false,
  placed: [],
  where: ['acme: shared tables'],
  locations: 3,
  clusters: ['home'],
  guardMode: 'enforce',
  liveKind: 'postgres',
  tokens: { acme: 'a.b.c', globex: 'd.e.f', initech: 'g.h.i' },
  globexRecording: '0190a7a4-2d7e-7c6e-8d7c-2f1c3a4b5c6d',
};

describe('the start banner', () => {
  it('names the database it uses: started here, reused from another process, or DATABASE_URL', () => {
    expect(databaseLine(facts.origin, '.tenantry')).toBe('embedded PostgreSQL on port 45123, data in .tenantry/pgdata');
    const reused = databaseLine(
      { kind: 'reused', dataDir: '/p/.tenantry/pgdata', port: 45123, ownerPid: 4242 },
      '.tenantry',
    );
    expect(reused).toContain('the embedded PostgreSQL of .tenantry/pgdata on port 45123');
    expect(reused).toContain('another process (pid 4242)');
    expect(reused).not.toContain('DATABASE_URL');
    expect(databaseLine({ kind: 'url', host: 'db.internal', port: '5432', database: 'app' }, '.tenantry')).toBe(
      'DATABASE_URL: db.internal:5432/app',
    );
    const banner = startBanner({ ...facts, origin: { kind: 'reused', dataDir: 'x', port: 1, ownerPid: 7 } });
    expect(banner).toContain('Ctrl+C stops this server; the embedded PostgreSQL keeps running for process 7.');
  });

  it('says when the start recovered what a killed process left', () => {
    const orphan = databaseLine(
      { ...facts.origin, recovered: { orphanPid: 999 } } as BannerFacts['origin'],
      '.tenantry',
    );
    expect(orphan).toContain('left running by a killed process (pid 999) was stopped and started anew');
    const stale = databaseLine(
      { ...facts.origin, recovered: { staleLock: true } } as BannerFacts['origin'],
      '.tenantry',
    );
    expect(stale).toContain('a stale lock file of a killed server was removed');
  });

  it('every curl whose answer is printed ends it with a newline', () => {
    const commands = startBanner(facts)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('curl '));
    expect(commands.length).toBeGreaterThan(10);
    for (const command of commands) {
      // a stream (-N) prints its own frames, each ending in a blank line
      if (command.startsWith('curl -N')) continue;
      expect(command, command).toMatch(/^curl -s -w '\\n' /);
    }
  });

  it('on Citus (TENANTRY_CITUS=1) says so, and what the mode leaves off, instead of the tiers', () => {
    const banner = startBanner({
      ...facts,
      origin: { kind: 'url', host: 'coordinator', port: '9700', database: 'app' },
      where: ['3 active tenants'],
      citus: { workers: 2 },
    });
    expect(banner).toContain(
      '  citus      TENANTRY_CITUS=1: the tables distributed by tenant_id over 2 workers; 3 active tenants',
    );
    expect(banner).toContain(
      'off in this mode: schema/database tiers, demo placements and moves, sign-up, TENANTRY_CLUSTERS,',
    );
    expect(banner).toContain(
      'console moves and exports, support reads (501 NOT_ON_CITUS), per-row write metering of recordings,',
    );
    expect(banner).toContain('the activity tag, database limits, fair checkout;');
    expect(banner).toContain('live recording events are published by the app after each write');
    expect(banner).not.toContain('  tiers      ');
    expect(banner).not.toContain('POST /sign-up');
    expect(banner).not.toContain('schema t_globex');
    expect(startBanner(facts)).toContain('  tiers      acme: shared tables');
  });

  it('lists the routes added lately and says what is on: metrics, tracing, rate limits, activity, limits', () => {
    const on = startBanner({
      ...facts,
      observe: {
        metrics: true,
        tracing: true,
        rateLimits: true,
        activitySeconds: 15,
        dbLimits: true,
        fairCheckout: true,
        trustProxy: '10.0.0.0/8',
      },
    });
    expect(on).toContain('GET /usage and /usage/events');
    expect(on).toContain('/settings');
    expect(on).toContain('GET /metrics (Prometheus)');
    expect(on).toContain('/console');
    expect(on).toMatch(/metrics +GET \/metrics \(bearer TENANTRY_METRICS_TOKEN\); tracing on/);
    expect(on).toMatch(/limits +rate limits on/);
    expect(on).toContain('trusted proxies 10.0.0.0/8');
    expect(on).toMatch(
      /tenants +activity published every 15 s: npm run tenantry -- tenants top; database limits by plan on; fair checkout on/,
    );
    const off = startBanner({
      ...facts,
      observe: { metrics: false, tracing: false, rateLimits: false, dbLimits: false, fairCheckout: false },
    });
    expect(off).toContain('off (set TENANTRY_METRICS_TOKEN to serve GET /metrics); tracing off');
    expect(off).toContain('rate limits off');
    expect(off).toContain('activity off (TENANTRY_ACTIVITY)');
    expect(off).toContain('client address of the socket');
    expect(off).not.toContain('GET /metrics (Prometheus)');
  });
});

describe('the worker banner', () => {
  it("lists every job the worker runs: the recordings' and the plugins'", async () => {
    // wired as app/main.ts wires them (nothing connects before start())
    const { default: pg } = await import('pg');
    const { createJobs } = await import('../../app/jobs/jobs-from-env.js');
    const { defineRecordingJobs } = await import('../../app/jobs/recording-jobs.js');
    const { PluginHost } = await import('../../src/plugins/index.js');
    const { createPlugins } = await import('../../app/plugins/registry.js');
    const { unboundServices } = await import('../../app/plugins/plugin-services.js');
    const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
    const jobs = createJobs({
      ownerUrl: 'postgres://nobody@127.0.0.1:1/none',
      catalog: pool,
      contextSecret: 'x'.repeat(32),
    });
    try {
      new PluginHost({ registry: createPlugins(unboundServices), db: pool, jobs });
      defineRecordingJobs(jobs, { dataPool: pool as never });
      const banner = workerBanner(jobs.names, 'DATABASE_URL');
      expect(jobs.names).toContain('recording.process');
      expect(jobs.names.some((n) => n.startsWith('transcripts.'))).toBe(true);
      expect(jobs.names.some((n) => n.startsWith('webhooks.'))).toBe(true);
      for (const name of jobs.names) expect(banner).toContain(name);
      expect(banner).toContain('against DATABASE_URL');
    } finally {
      await pool.end();
    }
  });
});
