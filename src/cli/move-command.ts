import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import pg from 'pg';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { Placements, type PlacementTarget } from '../tiers/placements.js';
import { createTenantDatabase, createTenantSchema } from '../tiers/provision.js';
import type { MoveProgress, MoveRecord } from '../tiers/move/move-record.js';
import { TenantMover } from '../tiers/move/tenant-mover.js';
import type { Tier } from '../tiers/tenant-router.js';
import { withDatabase, type ConnectionOptions } from './connection.js';

interface MoveOptions {
  to?: Tier;
  cluster: string;
  schema?: string;
  database?: string;
  ddl?: string;
  clusterUrl: string[];
  capture: string;
  verify: string;
  replicationUrl: string[];
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

/** One line per state; on a terminal, the line is rewritten in place. */
function progressPrinter(): { show: (p: MoveProgress) => void; end: () => void } {
  const tty = process.stdout.isTTY;
  let last = '';
  let lastAt = 0;
  return {
    show(p) {
      const parts = [`move ${p.moveId.slice(0, 8)}`, p.step];
      if (p.table) parts.push(p.table);
      if (p.copied !== undefined)
        parts.push(
          p.total
            ? `${p.copied}/${p.total} rows (${Math.floor((100 * p.copied) / Math.max(p.total, 1))}%)`
            : `${p.copied} rows`,
        );
      if (p.deltaBacklog !== undefined) parts.push(`backlog ${p.deltaBacklog}`);
      if (p.ranges) parts.push(`key range ${p.ranges.checked + 1}/${p.ranges.total}`);
      const line = parts.join('  ');
      if (tty) {
        process.stdout.write(`\r\x1b[2K${line}`);
      } else if (
        line.split('  ').slice(0, 3).join() !== last.split('  ').slice(0, 3).join() ||
        Date.now() - lastAt > 1000
      ) {
        console.log(line); // a log: a new line when the step or table changes, else once a second
        lastAt = Date.now();
      }
      last = line;
    },
    end() {
      if (tty && last) process.stdout.write('\n');
    },
  };
}

function summary(move: MoveRecord): string {
  const t = move.target;
  const where = `${t.tier} on ${t.cluster}${t.schema ? ` schema ${t.schema}` : ''}${t.database ? ` database ${t.database}` : ''}`;
  const lines = [`move ${move.id}: ${move.step} (${where})`];
  if (move.freezeMs !== null) lines.push(`  write freeze: ${move.freezeMs} ms`);
  if (move.switchedAt) lines.push(`  total: ${move.switchedAt.getTime() - move.createdAt.getTime()} ms to the switch`);
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
    .option('--ddl <file>', "create the target's tenant tables with this SQL first (schema or database tier)")
    .option(
      '--cluster-url <name=url>',
      'owner URL of another cluster (repeatable)',
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--capture <mode>',
      'change capture: triggers, or logical (logical replication, PG 15+, shared and database tiers)',
      'triggers',
    )
    .option(
      '--replication-url <name=url>',
      "with --capture logical: a superuser URL of a cluster (repeatable; home defaults to the command's admin URL)",
      (v: string, all: string[]) => [...all, v],
      [] as string[],
    )
    .option(
      '--verify <mode>',
      'verification in the freeze: ranges (key ranges checksummed before the freeze, only changed ones again) or full (every row, in the freeze)',
      'ranges',
    )
    .option('--rollback', "undo the tenant's open move (before its switch)")
    .option('--cleanup', "delete the source's rows of the tenant's last finished move (after the grace period)")
    .option('--cleanup-after <duration>', 'grace period before --cleanup may delete the source (default 1h)', '1h')
    .option('--force', 'with --cleanup: do not wait for the grace period')
    .option('--batch-size <n>', 'rows per copy batch', '5000')
    .option('--json', 'print the move record as JSON')
    .action(async (ref: string, opts: MoveOptions) => {
      await withDatabase(globals(), async (db) => {
        const g = globals();
        const ownerUrl =
          process.env.TENANTRY_OWNER_DATABASE_URL ??
          (g.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
        const owners: Record<string, string> = { home: ownerUrl, ...namedUrls(opts.clusterUrl, 'cluster-url') };
        if (opts.capture !== 'triggers' && opts.capture !== 'logical')
          throw new InvalidArgumentError('--capture takes triggers or logical', 'capture');
        if (opts.verify !== 'ranges' && opts.verify !== 'full')
          throw new InvalidArgumentError('--verify takes ranges or full', 'verify');
        const replication = {
          connections: { home: db.adminUrl, ...namedUrls(opts.replicationUrl, 'replication-url') },
        };
        const catalog = new pg.Pool({ connectionString: ownerUrl, max: 3 });
        const placements = new Placements({ catalog, owners });
        const printer = progressPrinter();
        const mover = new TenantMover({
          placements,
          catalog,
          graceMs: parseDuration(opts.cleanupAfter ?? '1h'),
          batchSize: Number(opts.batchSize),
          capture: opts.capture,
          verify: opts.verify,
          replication,
          onProgress: opts.json ? undefined : printer.show,
        });
        try {
          const tenant = await new TenantCatalog(catalog).get(ref);
          let move: MoveRecord;
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
            if (opts.ddl) await prepareTarget(target, await readFile(opts.ddl, 'utf8'), placements, db, owners);
            move = await mover.start(tenant.id, target);
            move = await mover.run(move.id);
          }
          printer.end();
          console.log(opts.json ? JSON.stringify(move, null, 2) : summary(move));
        } finally {
          printer.end();
          await placements.end();
          await catalog.end();
        }
      });
    });
}

function namedUrls(pairs: string[], option: string): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new InvalidArgumentError(`--${option} takes name=url`, option);
    urls[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return urls;
}

async function prepareTarget(
  target: PlacementTarget,
  ddl: string,
  placements: Placements,
  db: {
    adminUrl: string;
    appRole: string;
    ownerRole: string;
    appPassword: string;
    ownerPassword: string;
    contextSecret: string;
  },
  owners: Record<string, string>,
): Promise<void> {
  if (target.tier === 'schema' && target.schema) {
    await createTenantSchema(placements.ownerPool(target), target.schema, ddl);
  } else if (target.tier === 'database' && target.database) {
    if (target.cluster !== 'home')
      throw new InvalidArgumentError(
        '--ddl creates databases on the home cluster only: create it with createTenantDatabase elsewhere',
        'ddl',
      );
    await createTenantDatabase({
      adminUrl: db.adminUrl,
      ownerUrl: owners.home!,
      database: target.database,
      ddl,
      appRole: db.appRole,
      ownerRole: db.ownerRole,
      appPassword: db.appPassword,
      ownerPassword: db.ownerPassword,
      contextSecret: db.contextSecret,
    });
  }
}
