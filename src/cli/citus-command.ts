import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import pg from 'pg';
import { prepareCitus } from '../citus/citus-install.js';
import {
  isolateTenantShard,
  moveTenantShard,
  tenantShardPlacement,
  type TenantShardPlacement,
} from '../citus/tenant-shards.js';
import { applyCitusPlacement, citusPlacementPolicy, citusPlacementQuestion } from '../citus/citus-placement.js';
import { withDatabase, type ConnectionOptions } from './connection.js';

interface ShardFlags {
  table: string;
  to?: { nodeName: string; nodePort: number };
  mode: 'auto' | 'force_logical' | 'block_writes';
}

const node = (raw: string): { nodeName: string; nodePort: number } => {
  const match = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(raw);
  if (!match) throw new CommanderArgumentError('host:port of a worker (as in pg_dist_node)');
  return { nodeName: match[1]!, nodePort: Number(match[2]) };
};

const transferMode = (raw: string): ShardFlags['mode'] => {
  if (raw !== 'auto' && raw !== 'force_logical' && raw !== 'block_writes')
    throw new CommanderArgumentError('auto, force_logical or block_writes');
  return raw;
};

function describe(p: TenantShardPlacement): string {
  return `shard ${p.shardId} on ${p.nodeName}:${p.nodePort}${p.isolated ? ' (this tenant alone)' : ' (shared with other tenants)'}`;
}

/** Runs `fn` with a superuser connection and the tenant's id (from an id or a slug of the catalog). */
async function withTenant(
  globals: () => ConnectionOptions,
  cmd: Command,
  tenant: string,
  fn: (admin: pg.Client, tenantId: string) => Promise<void>,
): Promise<void> {
  await withDatabase(globals(), async (db) => {
    const admin = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry citus' });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ id: string }>(
        'select id::text as id from tenantry.tenants where id::text = $1 or slug = $1',
        [tenant],
      );
      if (!rows[0]) cmd.error(`No tenant ${tenant} in the catalog`);
      await fn(admin, rows[0]!.id);
    } finally {
      await admin.end();
    }
  });
}

/**
 * `tenantry citus`: the Citus step of an install (`prepare`), and a tenant's shard: where it is,
 * a shard of its own (`isolate`), and a move to another worker (`move`), through Citus's own
 * functions. See docs/citus.md.
 */
export function citusCommand(globals: () => ConnectionOptions): Command {
  const citus = new Command('citus').description(
    'run on a Citus coordinator: prepare, and tenant shards (docs/citus.md)',
  );
  citus
    .command('prepare')
    .description(
      'the Citus step of install --citus again: reference tables, context functions and policies Citus accepts',
    )
    .action(async () => {
      await withDatabase(globals(), async (db) => {
        const admin = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry citus prepare' });
        await admin.connect();
        try {
          const { rows } = await admin.query<{ key: string; value: string }>(
            `select key, value from tenantry.meta where key in ('app_role', 'owner_role', 'context_mode')`,
          );
          const meta = new Map(rows.map((r) => [r.key, r.value]));
          const eventTrigger =
            (await admin.query(`select 1 from pg_event_trigger where evtname = 'tenantry_lock_new_table'`)).rowCount !==
            0;
          await prepareCitus(admin, {
            appRole: meta.get('app_role')!,
            ownerRole: meta.get('owner_role')!,
            contextMode: meta.get('context_mode') === 'unsigned' ? 'unsigned' : 'signed',
            eventTrigger,
          });
          console.log(
            'citus step done: reference tables, context functions, plain policies on distributed tenant tables',
          );
        } finally {
          await admin.end();
        }
      });
    });
  const shardOptions = (c: Command) =>
    c.requiredOption('--table <name>', 'a distributed tenant table (its colocated tables follow)');
  shardOptions(
    citus.command('where').argument('<tenant>', 'id or slug').description("where a tenant's shard is"),
  ).action(async (tenant: string, flags: ShardFlags, cmd: Command) =>
    withTenant(globals, cmd, tenant, async (admin, id) => {
      console.log(describe(await tenantShardPlacement(admin, flags.table, id)));
    }),
  );
  shardOptions(
    citus
      .command('isolate')
      .argument('<tenant>', 'id or slug')
      .description('give the tenant a shard of its own in every colocated table (isolate_tenant_to_new_shard)')
      .option('--mode <mode>', 'shard_transfer_mode: auto, force_logical or block_writes', transferMode, 'auto'),
  ).action(async (tenant: string, flags: ShardFlags, cmd: Command) =>
    withTenant(globals, cmd, tenant, async (admin, id) => {
      console.log(`isolated: ${describe(await isolateTenantShard(admin, flags.table, id, flags.mode))}`);
    }),
  );
  shardOptions(
    citus
      .command('move')
      .argument('<tenant>', 'id or slug')
      .description("move the tenant's shard group to another worker (citus_move_shard_placement); isolate it first")
      .requiredOption('--to <host:port>', 'the target worker', node)
      .option('--mode <mode>', 'shard_transfer_mode: auto, force_logical or block_writes', transferMode, 'auto'),
  ).action(async (tenant: string, flags: ShardFlags, cmd: Command) =>
    withTenant(globals, cmd, tenant, async (admin, id) => {
      console.log(`moved: ${describe(await moveTenantShard(admin, flags.table, id, flags.to!, flags.mode))}`);
    }),
  );
  shardOptions(
    citus
      .command('place')
      .argument('<tenant>', 'id or slug')
      .description(
        'where the Citus placement policy puts the tenant (a shard of its own on the least loaded worker for an isolating plan or a hot tenant), and why; --apply carries it out',
      )
      .option('--plan <plan>', "place for this plan instead of the tenant's settings.plan")
      .option('--share <fraction>', "the tenant's share of DB time (0-1), e.g. from tenantry tenants top", share)
      .option('--isolate-plans <plans>', 'plans that get a shard of their own (comma-separated)', 'enterprise')
      .option('--apply', 'isolate and move as decided')
      .option('--mode <mode>', 'shard_transfer_mode: auto, force_logical or block_writes', transferMode, 'auto'),
  ).action(
    async (
      tenant: string,
      flags: ShardFlags & { plan?: string; share?: number; isolatePlans: string; apply?: boolean },
      cmd: Command,
    ) =>
      withTenant(globals, cmd, tenant, async (admin, id) => {
        const question = await citusPlacementQuestion(admin, flags.table, id, {
          ...(flags.plan ? { plan: flags.plan } : {}),
          ...(flags.share !== undefined ? { dbShare: flags.share } : {}),
        });
        const policy = citusPlacementPolicy({ isolatePlans: flags.isolatePlans.split(',').map((p) => p.trim()) });
        const decision = policy.decide(question);
        console.log(`now:    ${describe(question.current)}`);
        console.log(
          `target: ${decision.action === 'stay' ? 'its shared shard' : `a shard of its own on ${decision.worker!.nodeName}:${decision.worker!.nodePort}`}`,
        );
        for (const reason of decision.reasons) console.log(`  - ${reason}`);
        if (decision.action === 'isolate' && flags.apply)
          console.log(`placed: ${describe(await applyCitusPlacement(admin, flags.table, id, decision, flags.mode))}`);
        else if (decision.action === 'isolate') console.log(`Apply it with: ${citusPlaceCommand(tenant, flags)}`);
      }),
  );
  return citus;
}

/**
 * The `tenantry citus place … --apply` that carries out the decision just printed: every option
 * that shaped it (`--share`, `--plan`, `--isolate-plans`, `--mode`) given again, so that the
 * command decides the same (without `--share` a hot tenant would be left in its shared shard).
 */
export function citusPlaceCommand(
  tenant: string,
  flags: { table: string; plan?: string; share?: number; isolatePlans?: string; mode?: ShardFlags['mode'] },
): string {
  const words = ['tenantry citus place', shellWord(tenant), '--table', shellWord(flags.table)];
  if (flags.plan !== undefined) words.push('--plan', shellWord(flags.plan));
  if (flags.share !== undefined) words.push('--share', String(flags.share));
  if (flags.isolatePlans !== undefined && flags.isolatePlans !== 'enterprise')
    words.push('--isolate-plans', shellWord(flags.isolatePlans));
  if (flags.mode !== undefined && flags.mode !== 'auto') words.push('--mode', flags.mode);
  words.push('--apply');
  return words.join(' ');
}

/** A word as a POSIX shell reads it back: bare when plain, single-quoted otherwise. */
const shellWord = (word: string): string =>
  /^[A-Za-z0-9_.,:/@=-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

const share = (raw: string): number => {
  const n = Number(raw);
  if (!(n >= 0 && n <= 1)) throw new CommanderArgumentError('a fraction between 0 and 1');
  return n;
};
