import { Command } from 'commander';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { Placements, type PlacementTarget } from '../tiers/placements.js';
import type { MoveProgress, MoveRecord } from '../tiers/move/move-record.js';
import { TenantMover } from '../tiers/move/tenant-mover.js';
import type { Tier } from '../tiers/tenant-router.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { PLUGINS_OPTION_HELP } from './plugins-definition.js';
import { prepareMoveTarget } from './prepare-move-target.js';
import { progressReporter, type ProgressUpdate } from './progress-reporter.js';

interface MoveOptions {
  to?: Tier;
  cluster: string;
  schema?: string;
  database?: string;
  ddl?: string;
  plugins?: string;
  clusterUrl?: string[];
  capture: string;
  verify: string;
  replicationUrl?: string[];
  rollback?: boolean;
  cleanup?: boolean;
  cleanupAfter?: string;
  force?: boolean;
  batchSize: string;
  json?: boolean;
}

/** `1h`, `30m`, `45s`, `500ms`, `2d` or a number of milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError('durations look like 500ms, 30s, 15m, 1h or 2d', 'cleanup-after');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']!;
  return Number(m[1]) * unit;
}

/** The move's progress, as the reporter shows it. */
export function moveProgressUpdate(p: MoveProgress): ProgressUpdate {
  const phase = `move ${p.moveId.slice(0, 8)}  ${[p.step.replace('_', ' '), p.table].filter(Boolean).join(' ')}`;
  const detail = p.deltaBacklog === undefined ? undefined : `backlog ${p.deltaBacklog}`;
  if (p.ranges) return { phase, done: p.ranges.checked, total: p.ranges.total, unit: 'key ranges', detail };
  if (p.copied !== undefined)
    return { phase, done: p.copied, total: p.total, unit: p.step === 'cleaning' ? 'rows deleted' : 'rows', detail };
  return { phase, detail };
}

/** How this command's run went: `resumed` when it continued a move recorded by an earlier attempt, and how long it took. */
interface RunFacts {
  resumed: boolean;
  ms: number;
}

function summary(move: MoveRecord, run?: RunFacts): string {
  const t = move.target;
  const where = `${t.tier} on ${t.cluster}${t.schema ? ` schema ${t.schema}` : ''}${t.database ? ` database ${t.database}` : ''}`;
  const lines = [`move ${move.id}: ${move.step} (${where})`];
  if (move.freezeMs !== null) lines.push(`  write freeze: ${move.freezeMs} ms`);
  // the record's times span every attempt: a resumed move reports this run's own time
  if (move.switchedAt && run?.resumed)
    lines.push(
      `  this run: ${Math.round(run.ms)} ms (resumed a move recorded at ${move.createdAt.toISOString()}; earlier attempts not counted)`,
    );
  else if (move.switchedAt)
    lines.push(`  total: ${move.switchedAt.getTime() - move.createdAt.getTime()} ms to the switch`);
  if (move.step === 'done' && move.cleanupAfter)
    lines.push(
      `  source kept until ${move.cleanupAfter.toISOString()}: tenantry tenants move ${move.tenantId} --cleanup`,
    );
  if (move.error) lines.push(`  last error: ${move.error}`);
  return lines.join('\n');
}

/**
 * `tenantry tenants move <tenant> --to shared|schema|database …`: moves a tenant online, showing
 * progress. Run the same command again after a crash to continue; `--rollback` undoes a move
 * that has not switched; `--cleanup` deletes the source's rows once the grace period is over.
 */
export function moveCommand(globals: () => ConnectionOptions): Command {
  return new Command('move')
    .argument('<tenant>', 'tenant id or slug')
    .description('move a tenant online to another placement (resumable; run again after a crash)')
    .option('--to <tier>', 'shared | schema | database')
    .option('--cluster <name>', 'target cluster', 'home')
    .option('--schema <name>', 'target schema (schema tier)')
    .option('--database <name>', 'target database (database tier)')
    .option(
      '--ddl <path>',
      'create the target first: a migrations directory (global/, tenant/; applied and recorded as `tenantry migrate` does), or one SQL file (deployments not versioned by `tenantry migrate`)',
    )
    .option('--plugins <module>', `with --ddl <directory>: ${PLUGINS_OPTION_HELP}`)
    .option(
      '--cluster-url <name=url>',
      'owner URL of another cluster (repeatable)',
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      '--capture <mode>',
      'change capture: triggers, or logical (logical replication, PG 15+, shared and database tiers)',
      'triggers',
    )
    .option(
      '--replication-url <name=url>',
      "with --capture logical: a superuser URL of a cluster (repeatable; home defaults to the command's admin URL)",
      (v: string, all: string[] = []) => [...all, v],
    )
    .option(
      '--verify <mode>',
      'verification in the freeze: ranges (key ranges checksummed before the freeze, only changed ones again) or full (every row, in the freeze)',
      'ranges',
    )
    .option('--rollback', "undo the tenant's open move (before its switch)")
    .option('--cleanup', "delete the source's rows of the tenant's last finished move (after the grace period)")
    .option('--cleanup-after <duration>', 'grace period before --cleanup may delete the source', '1h')
    .option('--force', 'with --cleanup: do not wait for the grace period')
    .option('--batch-size <n>', 'rows per copy batch', '5000')
    .option('--json', 'print the move record as JSON')
    .action(async (ref: string, opts: MoveOptions) => {
      await withDatabase(globals(), async (db) => {
        const g = globals();
        const ownerUrl =
          process.env.TENANTRY_OWNER_DATABASE_URL ??
          (g.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
        const owners: Record<string, string> = { home: ownerUrl, ...namedUrls(opts.clusterUrl ?? [], 'cluster-url') };
        if (opts.capture !== 'triggers' && opts.capture !== 'logical')
          throw new InvalidArgumentError('--capture takes triggers or logical', 'capture');
        if (opts.verify !== 'ranges' && opts.verify !== 'full')
          throw new InvalidArgumentError('--verify takes ranges or full', 'verify');
        const replication = {
          connections: { home: db.adminUrl, ...namedUrls(opts.replicationUrl ?? [], 'replication-url') },
        };
        const catalog = commandPool({ connectionString: ownerUrl, max: 3 });
        const placements = new Placements({ catalog, owners });
        const progress = progressReporter();
        const mover = new TenantMover({
          placements,
          catalog,
          graceMs: parseDuration(opts.cleanupAfter ?? '1h'),
          batchSize: Number(opts.batchSize),
          capture: opts.capture,
          verify: opts.verify,
          replication,
          onProgress: (p) => progress.update(moveProgressUpdate(p)),
        });
        try {
          const tenant = await new TenantCatalog(catalog).get(ref);
          let move: MoveRecord;
          let facts: RunFacts | undefined;
          if (opts.rollback || opts.cleanup) {
            const { rows } = await catalog.query<{ id: string }>(
              `select id from tenantry.moves where tenant_id = $1 and step <> 'cleaned' order by created_at desc limit 1`,
              [tenant.id],
            );
            if (!rows[0]) throw new InvalidArgumentError('The tenant has no move to roll back or clean up', 'tenant');
            move = opts.rollback
              ? await mover.rollback(rows[0].id)
              : await mover.cleanup(rows[0].id, { force: !!opts.force });
          } else {
            if (!opts.to) throw new InvalidArgumentError('--to shared|schema|database is required', 'to');
            const target: PlacementTarget = {
              tier: opts.to,
              cluster: opts.cluster,
              schema: opts.schema ?? null,
              database: opts.database ?? null,
            };
            if (opts.ddl) {
              // the catalog, a shared database, `public`…: refused before --ddl creates or migrates anything there
              await mover.checkTarget(tenant.id, target);
              const prepared = await prepareMoveTarget({
                target,
                tenant: tenant.id,
                path: opts.ddl,
                plugins: opts.plugins,
                placements,
                catalog,
                db,
                owners,
              });
              if (prepared.kind === 'migrations') {
                const applied = prepared.report.results.flatMap((r) => r.applied.map((m) => `${r.target.key}: ${m}`));
                progress.note(
                  `target at migration version ${prepared.report.results.at(-1)?.version ?? 'none'}${applied.length ? ` (applied ${applied.join(', ')})` : ''}`,
                );
              }
            }
            const resumed = (await mover.openMove(tenant.id)) !== undefined;
            const began = performance.now();
            move = await mover.start(tenant.id, target);
            move = await mover.run(move.id);
            facts = { resumed, ms: performance.now() - began };
          }
          progress.stop();
          console.log(opts.json ? JSON.stringify(move, null, 2) : summary(move, facts));
        } finally {
          progress.stop();
          await placements.end();
          await catalog.end();
        }
      });
    });
}

/** `name=url` pairs of a repeatable option, as a map. */
export function namedUrls(pairs: string[], option: string): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new InvalidArgumentError(`--${option} takes name=url`, option);
    const url = pair.slice(at + 1);
    // a malformed URL is the option's fault: said as such, not as Node's ERR_INVALID_URL (never echoed: it may hold a password)
    if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol))
      throw new InvalidArgumentError(`--${option} ${pair.slice(0, at)}=… must be a postgres:// URL`, option);
    urls[pair.slice(0, at)] = url;
  }
  return urls;
}
