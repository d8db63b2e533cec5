import { Command } from 'commander';
import pg from 'pg';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import type { Tenant, TenantStatus } from '../catalog/tenant.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';
import { moveCommand, namedUrls } from './move-command.js';
import { onboardCommand } from './onboard-command.js';
import { purgeCommand, purgeReportCommand, restoreCommand } from './purge-command.js';
import { exportCommand, importCommand } from './export-command.js';
import { usageCommand, usageExportCommand } from './usage-command.js';
import { topCommand } from './top-command.js';
import { settingsCommand } from './settings-command.js';
import { tenantFlagsCommand } from './flags-command.js';
import { brandCommand } from './brand-command.js';
import { pluginsCommand } from './plugins-command.js';
import { placementQuestion, planPlacementPolicy } from '../tiers/placement-policy.js';
import { Placements, type PlacementTarget } from '../tiers/placements.js';

/**
 * Where each `provisioning` tenant is being onboarded to (its onboarding record's target): until
 * its route step it is placed in the shared tier, which is not where it goes.
 */
async function onboardingTargets(pool: pg.Pool, tenants: Tenant[]): Promise<Map<string, PlacementTarget>> {
  const ids = tenants.filter((t) => t.status === 'provisioning').map((t) => t.id);
  if (ids.length === 0) return new Map();
  const { rows } = await pool.query<{ tenant_id: string; target: PlacementTarget }>(
    `select tenant_id, target from tenantry.onboardings where tenant_id = any($1::uuid[]) and completed_at is null`,
    [ids],
  );
  return new Map(rows.map((r) => [r.tenant_id, r.target]));
}

/** The TIER column: a tenant being onboarded shows where it goes, `(provisioning → schema)`. */
function tierOf(t: Tenant, targets: Map<string, PlacementTarget>): string {
  const target = targets.get(t.id);
  return target ? `(provisioning → ${target.tier})` : t.placement.tier;
}

function printTenants(tenants: Tenant[], json: boolean, targets = new Map<string, PlacementTarget>()): void {
  if (json) {
    console.log(
      JSON.stringify(
        tenants.map((t) => (targets.has(t.id) ? { ...t, onboardingTarget: targets.get(t.id) } : t)),
        null,
        2,
      ),
    );
    return;
  }
  if (tenants.length === 0) {
    console.log('(no tenants)');
    return;
  }
  const rows = tenants.map((t) => [t.id, t.slug, t.status, tierOf(t, targets), t.createdAt.toISOString(), t.name]);
  console.log(textTable(['ID', 'SLUG', 'STATUS', 'TIER', 'CREATED', 'NAME'], rows));
}

/** `schema on cluster home, schema t_acme`. */
function describePlacement(p: PlacementTarget): string {
  return `${p.tier} on cluster ${p.cluster}${p.schema ? `, schema ${p.schema}` : ''}${p.database ? `, database ${p.database}` : ''}`;
}

/** Runs `fn` with a catalog on the owner role (or the admin URL when only DATABASE_URL is known). */
async function withCatalog<T>(
  globals: ConnectionOptions,
  fn: (catalog: TenantCatalog, pool: pg.Pool, ownerUrl: string) => Promise<T>,
): Promise<T> {
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    try {
      return await fn(new TenantCatalog(pool), pool, url);
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
      const [tenants, targets] = await withCatalog(globals(), async (c, pool) => {
        const tenant = [await c.get(ref)];
        return [tenant, await onboardingTargets(pool, tenant)] as const;
      });
      printTenants(tenants, !!opts.json, targets);
    });
  cmd
    .command('list')
    .description('list tenants by creation time')
    .option('--status <status>', 'active | suspended | deleted')
    .option('--limit <n>', 'page size (1-1000)', '100')
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'print JSON')
    .action(async (opts: { status?: TenantStatus; limit: string; cursor?: string; json?: boolean }) => {
      const [page, targets] = await withCatalog(globals(), async (c, pool) => {
        const listed = await c.list({ status: opts.status, limit: Number(opts.limit), cursor: opts.cursor });
        return [listed, await onboardingTargets(pool, listed.tenants)] as const;
      });
      printTenants(page.tenants, !!opts.json, targets);
      if (page.nextCursor && !opts.json) console.log(`more: --cursor ${page.nextCursor}`);
    });
  cmd
    .command('place <idOrSlug>')
    .description(
      'show where the tenant lives now (and any move under way), and where the placement policy would put it, and why (changes nothing)',
    )
    .option('--plan <plan>', "place for this plan instead of the tenant's settings.plan")
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { plan?: string; json?: boolean }) => {
      const answer = await withCatalog(globals(), async (_catalog, pool) => {
        const question = await placementQuestion(pool, ref, { plan: opts.plan });
        const current = await new Placements({ catalog: pool, owners: {} }).get(question.tenant.id);
        const { rows } = await pool.query<{ id: string; step: string; target: PlacementTarget }>(
          `select id, step, target from tenantry.moves
            where tenant_id = $1 and step not in ('done', 'cleaned', 'rolled_back') order by created_at desc limit 1`,
          [question.tenant.id],
        );
        const { tenantId: _, ...where } = current;
        return {
          tenant: { id: question.tenant.id, slug: question.tenant.slug },
          current: where,
          openMove: rows[0] ?? null,
          ...planPlacementPolicy().decide(question),
          clusters: question.clusters,
        };
      });
      const t = answer.target;
      const there =
        answer.current.tier === t.tier &&
        answer.current.cluster === t.cluster &&
        (answer.current.schema ?? null) === (t.schema ?? null) &&
        (answer.current.database ?? null) === (t.database ?? null);
      if (opts.json) {
        console.log(JSON.stringify({ ...answer, alreadyThere: there }, null, 2));
        return;
      }
      console.log(`now:    ${describePlacement(answer.current)}`);
      if (answer.openMove)
        console.log(
          `moving: to ${describePlacement(answer.openMove.target)} (move ${answer.openMove.id}, step ${answer.openMove.step})`,
        );
      console.log(`target: ${describePlacement(t)}`);
      for (const reason of answer.reasons) console.log(`  - ${reason}`);
      if (there) console.log('The tenant is already where the policy would put it: nothing to do.');
      else {
        const flags = [
          `--to ${t.tier}`,
          t.cluster !== 'home' ? `--cluster ${t.cluster}` : '',
          t.schema ? `--schema ${t.schema}` : '',
          t.database ? `--database ${t.database}` : '',
        ];
        console.log(`Apply it with: tenantry tenants move ${answer.tenant.slug} ${flags.filter(Boolean).join(' ')}`);
      }
    });
  cmd.addCommand(moveCommand(globals));
  cmd.addCommand(onboardCommand(globals));
  cmd.addCommand(restoreCommand(globals));
  cmd.addCommand(purgeCommand(globals));
  cmd.addCommand(purgeReportCommand(globals));
  cmd.addCommand(exportCommand(globals));
  cmd.addCommand(importCommand(globals));
  cmd.addCommand(usageCommand(globals));
  cmd.addCommand(usageExportCommand(globals));
  cmd.addCommand(topCommand(globals));
  cmd.addCommand(settingsCommand(globals));
  cmd.addCommand(tenantFlagsCommand(globals));
  cmd.addCommand(brandCommand(globals));
  cmd.addCommand(pluginsCommand(globals));
  for (const [name, verb, describe] of [
    ['suspend', 'suspend', "refuse the tenant's requests until resumed (data kept)"],
    ['resume', 'resume', 'resume a suspended tenant'],
    ['delete', 'softDelete', 'soft-delete: the tenant answers as not found; rows stay until purged'],
  ] as const) {
    cmd
      .command(`${name} <idOrSlug>`)
      .description(describe)
      .option(
        '--cluster-url <name=url>',
        'owner URL of another cluster: a tenant placed there is held (or released) there too (repeatable)',
        (v: string, all: string[] = []) => [...all, v],
      )
      .option('--json', 'print JSON')
      .action(async (ref: string, opts: { json?: boolean; clusterUrl?: string[] }) => {
        const tenant = await withCatalog(globals(), async (_catalog, pool, ownerUrl) => {
          // the tenant's placement database (its own database, another cluster) is held too
          const placements = new Placements({
            catalog: pool,
            owners: { home: ownerUrl, ...namedUrls(opts.clusterUrl ?? [], 'cluster-url') },
          });
          try {
            return await new TenantCatalog(pool, { placements })[verb](ref);
          } finally {
            await placements.end();
          }
        });
        printTenants([tenant], !!opts.json);
      });
  }
  return cmd;
}
