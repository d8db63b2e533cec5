import { Command } from 'commander';
import pg from 'pg';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import type { Tenant, TenantStatus } from '../catalog/tenant.js';
import { withDatabase, type ConnectionOptions } from './connection.js';
import { moveCommand } from './move-command.js';
import { placementQuestion, planPlacementPolicy } from '../tiers/placement-policy.js';

function printTenants(tenants: Tenant[], json: boolean): void {
  if (json) {
    console.log(JSON.stringify(tenants, null, 2));
    return;
  }
  if (tenants.length === 0) {
    console.log('(no tenants)');
    return;
  }
  const rows = tenants.map((t) => [t.id, t.slug, t.status, t.placement.tier, t.createdAt.toISOString(), t.name]);
  const head = ['ID', 'SLUG', 'STATUS', 'TIER', 'CREATED', 'NAME'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows])
    console.log(
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
}

/** Runs `fn` with a catalog on the owner role (or the admin URL when only DATABASE_URL is known). */
async function withCatalog<T>(
  globals: ConnectionOptions,
  fn: (catalog: TenantCatalog, pool: pg.Pool) => Promise<T>,
): Promise<T> {
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      return await fn(new TenantCatalog(pool), pool);
    } finally {
      await pool.end();
    }
  });
}

/** `tenantry tenants …`: create, get, list, suspend, resume, delete. */
export function tenantsCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('tenants').description('manage the tenant catalog');
  cmd
    .command('create <slug>')
    .description('create an active tenant in the shared tier')
    .option('--name <name>', 'display name (default: the slug)')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: { name?: string; json?: boolean }) => {
      const tenant = await withCatalog(globals(), (c) => c.create({ slug, name: opts.name ?? slug }));
      printTenants([tenant], !!opts.json);
    });
  cmd
    .command('get <idOrSlug>')
    .description('show one tenant, whatever its status')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      printTenants([await withCatalog(globals(), (c) => c.get(ref))], !!opts.json);
    });
  cmd
    .command('list')
    .description('list tenants by creation time')
    .option('--status <status>', 'active | suspended | deleted')
    .option('--limit <n>', 'page size (1-1000)', '100')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'print JSON')
    .action(async (opts: { status?: TenantStatus; limit: string; cursor?: string; json?: boolean }) => {
      const page = await withCatalog(globals(), (c) =>
        c.list({ status: opts.status, limit: Number(opts.limit), cursor: opts.cursor }),
      );
      printTenants(page.tenants, !!opts.json);
      if (page.nextCursor && !opts.json) console.log(`more: --cursor ${page.nextCursor}`);
    });
  cmd
    .command('place <idOrSlug>')
    .description('explain where the placement policy would put the tenant, and why (changes nothing)')
    .option('--plan <plan>', "place for this plan instead of the tenant's settings.plan")
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { plan?: string; json?: boolean }) => {
      const decision = await withCatalog(globals(), async (_catalog, pool) => {
        const question = await placementQuestion(pool, ref, { plan: opts.plan });
        return { ...planPlacementPolicy().decide(question), clusters: question.clusters };
      });
      if (opts.json) {
        console.log(JSON.stringify(decision, null, 2));
        return;
      }
      const t = decision.target;
      console.log(
        `target: ${t.tier} on cluster ${t.cluster}${t.schema ? `, schema ${t.schema}` : ''}${t.database ? `, database ${t.database}` : ''}`,
      );
      for (const reason of decision.reasons) console.log(`  - ${reason}`);
      console.log('Apply it with: tenantry tenants move <tenant> --to <tier> …');
    });
  cmd.addCommand(moveCommand(globals));
  for (const [name, verb, describe] of [
    ['suspend', 'suspend', "refuse the tenant's requests until resumed (data kept)"],
    ['resume', 'resume', 'resume a suspended tenant'],
    ['delete', 'softDelete', 'soft-delete: the tenant answers as not found; rows stay until purged'],
  ] as const) {
    cmd
      .command(`${name} <idOrSlug>`)
      .description(describe)
      .option('--json', 'print JSON')
      .action(async (ref: string, opts: { json?: boolean }) => {
        printTenants([await withCatalog(globals(), (c) => c[verb](ref))], !!opts.json);
      });
  }
  return cmd;
}
