import { Command, InvalidArgumentError } from 'commander';
import type pg from 'pg';
import { activityTag } from '../data/activity-tag.js';
import {
  ACTIVITY_INTERVAL_MS,
  ACTIVITY_WATCH_POLL_MS,
  watchTenantActivity,
  publishingInstances,
  liveActivityBlindness,
  readLiveActivity,
  readPublishedActivity,
} from '../data/tenant-activity-publisher.js';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { quoteIdent } from '../policy/identifiers.js';
import { placementQuestion, planPlacementPolicy } from '../tiers/placement-policy.js';
import { adviseOnLoad, type TenantLoad } from '../tiers/placement-advice.js';
import type { Tier } from '../tiers/tenant-router.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';

/** One line of `tenantry tenants top`. */
export interface TopRow {
  tenantId: string;
  slug: string;
  plan: string | null;
  tier: Tier;
  /** Published by the pools (publishTenantActivity) over the window. */
  dbTimeMs: number;
  dbShare: number;
  statements: number;
  rows: number;
  errors: number;
  timeouts: number;
  waits: number;
  waitMs: number;
  /** Held at the end of each instance's last window. */
  connections: number;
  /** Live, from pg_stat_activity (pools with `activityTag`): backends running its statements now, and those waiting on a lock. */
  activeNow: number;
  lockWaitsNow: number;
  longestNowMs: number;
  /** Bytes of its rows in shared tables, its schema or its database (with --storage). */
  storageBytes: number | null;
}

/** What `tenantry tenants top` shows. */
export interface TopReport {
  windowMinutes: number;
  /** Instances that published within the last two intervals (30 s by default). */
  instances: number;
  /** Instances with windows in the time window but none in the last two intervals: killed, or idle since. */
  staleInstances: number;
  totalDbTimeMs: number;
  tenants: TopRow[];
  advice: string[];
  /**
   * Set when this role cannot see other roles' backends in pg_stat_activity (not a superuser nor
   * a member of pg_read_all_stats): NOW, LOCKED and LONGEST are unknown, not 0. Says how to fix it.
   */
  liveUnavailable?: string;
  /**
   * Set on a first look (no watch was on): pools made with `activityTag: 'watched'` tag their
   * statements only while someone watches, from their next poll on, so NOW, LOCKED and LONGEST
   * may miss their statements in this reading. The next refresh has them.
   */
  liveStarting?: string;
}

/** What {@link TopReport.liveStarting} says. */
export const LIVE_STARTING = `first look: pools with activityTag 'watched' tag their statements from their next poll (within ${ACTIVITY_WATCH_POLL_MS / 1000} s), so NOW, LOCKED and LONGEST may miss some until the next refresh`;

/**
 * Starts or extends the watch of the live activity (see watchTenantActivity); the sentence of
 * {@link TopReport.liveStarting} when none was on. A database installed before activity 002
 * has no watch: nothing to say (its pools cannot use 'watched' either).
 */
export async function startLiveWatch(db: Queryable): Promise<string | undefined> {
  try {
    return (await watchTenantActivity(db)) ? undefined : LIVE_STARTING;
  } catch (error) {
    if (sqlStateOf(error) === '42P01') return undefined;
    throw error;
  }
}

interface TopOptions {
  windowMinutes: number;
  limit: number;
  storage: boolean;
  moveShare: number;
  /** On Citus: a distributed tenant table, to advise a shard of its own instead of a database. */
  citusTable?: string;
  /** Advise a move only past this much DB time in the window, ms (the CLI: 60 s). */
  minDbTimeMs?: number;
  /** Advise on connection waits only from this many (the CLI: 10). */
  minWaits?: number;
}

/** Reads the figures of `tenantry tenants top` (as the owner or a superuser of the home database). */
export async function readTop(db: pg.Pool, options: TopOptions): Promise<TopReport> {
  const { rows: tenants } = await db.query<{ id: string; slug: string; plan: string | null; tier: Tier | null }>(
    `select t.id, t.slug, t.settings->>'plan' as plan, p.tier
       from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id
      where t.status <> 'deleted'`,
  );
  const byId = new Map(tenants.map((t) => [t.id, t]));
  const byTag = new Map(tenants.map((t) => [activityTag(t.id), t.id]));
  const published = await readPublishedActivity(db, options.windowMinutes);
  const instances = await publishingInstances(db, options.windowMinutes);
  const liveStarting = await startLiveWatch(db);
  const live = await readLiveActivity(db);
  const liveUnavailable = await liveActivityBlindness(db, live);
  const storage = options.storage ? await readStorage(db) : new Map<string, number>();
  const total = published.reduce((sum, r) => sum + r.dbTimeMs, 0);
  const rows = new Map<string, TopRow>();
  const row = (tenantId: string): TopRow => {
    let r = rows.get(tenantId);
    if (!r) {
      const t = byId.get(tenantId);
      r = {
        tenantId,
        slug: tenantId === '' ? '(no tenant)' : (t?.slug ?? tenantId),
        plan: t?.plan ?? null,
        tier: t?.tier ?? 'shared',
        dbTimeMs: 0,
        dbShare: 0,
        statements: 0,
        rows: 0,
        errors: 0,
        timeouts: 0,
        waits: 0,
        waitMs: 0,
        connections: 0,
        activeNow: 0,
        lockWaitsNow: 0,
        longestNowMs: 0,
        storageBytes: options.storage ? (storage.get(tenantId) ?? 0) : null,
      };
      rows.set(tenantId, r);
    }
    return r;
  };
  for (const p of published) {
    const r = row(p.tenantKey);
    r.dbTimeMs = p.dbTimeMs;
    r.dbShare = total > 0 ? p.dbTimeMs / total : 0;
    r.statements = p.statements;
    r.rows = p.rows;
    r.errors = p.errors;
    r.timeouts = p.timeouts;
    r.waits = p.waits;
    r.waitMs = p.waitMs;
    r.connections = p.connections;
  }
  for (const l of live) {
    const id = byTag.get(l.tag);
    if (id === undefined) continue; // a tag of a tenant deleted since, or of another catalog
    const r = row(id);
    r.activeNow = l.active;
    r.lockWaitsNow = l.lockWaits;
    r.longestNowMs = l.longestMs;
  }
  for (const [id] of storage) if (byId.has(id)) row(id);
  const sorted = [...rows.values()].sort(
    (a, b) => b.dbTimeMs - a.dbTimeMs || b.activeNow - a.activeNow || (b.storageBytes ?? 0) - (a.storageBytes ?? 0),
  );
  const window = options.windowMinutes === 60 ? 'this hour' : `in the last ${options.windowMinutes} min`;
  const policy = planPlacementPolicy({ tiers: {}, defaultTier: 'database' });
  const targets = new Map<string, ReturnType<typeof policy.decide> | undefined>();
  for (const r of sorted)
    if (r.tenantId !== '' && r.dbShare >= options.moveShare && r.tier !== 'database') {
      // where the placement policy would give it a database of its own (least-loaded cluster)
      targets.set(
        r.tenantId,
        await placementQuestion(db, r.tenantId)
          .then((q) => policy.decide(q))
          .catch(() => undefined),
      );
    }
  const advice = adviseOnLoad(sorted as TenantLoad[], {
    window,
    moveShare: options.moveShare,
    target: (load) => targets.get(load.tenantId),
    ...(options.citusTable ? { citus: { table: options.citusTable } } : {}),
    ...(options.minDbTimeMs !== undefined ? { minDbTimeMs: options.minDbTimeMs } : {}),
    ...(options.minWaits !== undefined ? { minWaits: options.minWaits } : {}),
  });
  return {
    windowMinutes: options.windowMinutes,
    instances: instances.live,
    staleInstances: instances.stale,
    totalDbTimeMs: total,
    tenants: sorted.slice(0, options.limit),
    advice,
    ...(liveUnavailable ? { liveUnavailable } : {}),
    ...(liveStarting ? { liveStarting } : {}),
  };
}

/**
 * Bytes per tenant in this database: its rows in the registered tenant tables (pg_column_size of
 * each row: a full read of each table, hence --storage), plus the relations of a schema-tier
 * tenant's schema and the size of a database-tier tenant's database on this server.
 */
async function readStorage(db: pg.Pool): Promise<Map<string, number>> {
  const bytes = new Map<string, number>();
  const add = (id: string, n: number) => bytes.set(id, (bytes.get(id) ?? 0) + n);
  const { rows: tables } = await db.query<{ relid: string; col: string }>(
    `select r.relid::regclass::text as relid, r.tenant_column::text as col
       from tenantry.registered_tables r join pg_class c on c.oid = r.relid
      where r.kind = 'tenant' and c.relkind in ('r', 'p')`,
  );
  for (const t of tables) {
    // relid is a regclass rendered by PostgreSQL (already quoted where needed); the column is quoted here
    const { rows } = await db.query<{ k: string; n: string }>(
      `select ${quoteIdent(t.col)}::text as k, sum(pg_column_size(x.*))::int8 as n from ${t.relid} x group by 1`,
    );
    for (const r of rows) add(r.k, Number(r.n));
  }
  const { rows: schemas } = await db.query<{ id: string; n: string }>(
    `select p.tenant_id as id, coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 as n
       from tenantry.placements p join pg_namespace s on s.nspname = p.schema
       join pg_class c on c.relnamespace = s.oid and c.relkind in ('r', 'p', 'm')
      where p.tier = 'schema' group by 1`,
  );
  for (const r of schemas) add(r.id, Number(r.n));
  const { rows: databases } = await db.query<{ id: string; n: string | null }>(
    `select p.tenant_id as id, case when has_database_privilege(d.datname, 'CONNECT') then pg_database_size(d.oid) end as n
       from tenantry.placements p join pg_database d on d.datname = p.database where p.tier = 'database'`,
  );
  for (const r of databases) if (r.n !== null) add(r.id, Number(r.n));
  return bytes;
}

function size(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n >= 10 || u === 0 ? Math.round(n) : n.toFixed(1)} ${units[u]}`;
}

/** "2 instance(s) publishing" and, when some stopped publishing, how many (a killed one ages out of the window). */
export function instancesText(report: Pick<TopReport, 'instances' | 'staleInstances'>): string {
  const live = `${report.instances} instance(s) publishing`;
  return report.staleInstances > 0
    ? `${live} (${report.staleInstances} stale: nothing published in the last ${(2 * ACTIVITY_INTERVAL_MS) / 1000} s, stopped or idle)`
    : live;
}

function print(report: TopReport): void {
  console.log(
    `tenantry tenants top — last ${report.windowMinutes} min, ${instancesText(report)}, DB time ${(report.totalDbTimeMs / 1000).toFixed(1)} s`,
  );
  if (report.liveUnavailable) console.log(report.liveUnavailable);
  else if (report.liveStarting) console.log(report.liveStarting);
  if (report.tenants.length === 0) {
    console.log('(no activity: publish it from the app with publishTenantActivity, see docs/monitoring.md)');
    return;
  }
  console.log(
    textTable(
      [
        'TENANT',
        'PLAN',
        'TIER',
        'DB TIME',
        'SHARE',
        'STMTS',
        'ROWS',
        'ERRORS',
        'TIMEOUTS',
        'WAITS',
        'CONNS',
        'NOW',
        'LOCKED',
        'LONGEST',
        'STORAGE',
      ],
      report.tenants.map((r) => [
        r.slug,
        r.plan ?? '-',
        r.tier,
        `${(r.dbTimeMs / 1000).toFixed(1)} s`,
        `${(r.dbShare * 100).toFixed(1)} %`,
        String(r.statements),
        String(r.rows),
        String(r.errors),
        String(r.timeouts),
        r.waits === 0 ? '0' : `${r.waits} (${Math.round(r.waitMs / r.waits)} ms)`,
        String(r.connections),
        ...(report.liveUnavailable
          ? ['?', '?', '?']
          : [String(r.activeNow), String(r.lockWaitsNow), r.activeNow > 0 ? `${r.longestNowMs} ms` : '-']),
        size(r.storageBytes),
      ]),
    ),
  );
  for (const line of report.advice) console.log(`advice: ${line}`);
}

function positive(name: string, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n <= 0 || n > max)
      throw new InvalidArgumentError(`${name} must be a number greater than 0 and at most ${max}`);
    return n;
  };
}

/** `tenantry tenants top`: per-tenant DB time, statements, rows, waits, connections, storage, and advice. */
export function topCommand(globals: () => ConnectionOptions): Command {
  return new Command('top')
    .description(
      "each tenant's database use (DB time, statements, rows, errors, timeouts, waits, connections) published by the pools, what it runs now (pg_stat_activity), its storage, and advice from the placement policy",
    )
    .option('--window <minutes>', 'the window of published figures', positive('--window', 10_080), 60)
    .option('--limit <n>', 'tenants shown', positive('--limit', 10_000), 20)
    .option('--storage', "also measure each tenant's storage (reads every tenant table)")
    .option('--move-share <percent>', 'advise a move past this share of DB time', positive('--move-share', 100), 25)
    .option(
      '--citus-table <table>',
      'on Citus: advise a shard of its own (tenantry citus place) for this distributed tenant table',
    )
    .option(
      '--min-db-time <seconds>',
      'advise a move only past this much DB time in the window',
      positive('--min-db-time', 604_800),
      60,
    )
    .option('--min-waits <n>', 'advise on connection waits only from this many', positive('--min-waits', 1_000_000), 10)
    .option('--watch <seconds>', 'refresh every so many seconds until interrupted', positive('--watch', 3600))
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        window: number;
        limit: number;
        storage?: boolean;
        moveShare: number;
        citusTable?: string;
        minDbTime: number;
        minWaits: number;
        watch?: number;
        json?: boolean;
      }) => {
        await withDatabase(globals(), async (local) => {
          const url =
            process.env.TENANTRY_OWNER_DATABASE_URL ??
            (globals().databaseUrl || process.env.DATABASE_URL ? local.adminUrl : local.ownerUrl);
          const pool = commandPool({ connectionString: url, max: 2 });
          try {
            for (;;) {
              const report = await readTop(pool, {
                windowMinutes: opts.window,
                limit: Math.floor(opts.limit),
                storage: !!opts.storage,
                moveShare: opts.moveShare / 100,
                minDbTimeMs: opts.minDbTime * 1000,
                minWaits: opts.minWaits,
                ...(opts.citusTable ? { citusTable: opts.citusTable } : {}),
              });
              if (opts.json) console.log(JSON.stringify(report, null, 2));
              else {
                if (opts.watch) process.stdout.write('\x1b[2J\x1b[H');
                print(report);
              }
              if (!opts.watch) return;
              await new Promise((r) => setTimeout(r, opts.watch! * 1000));
            }
          } finally {
            await pool.end();
          }
        });
      },
    );
}
