import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import pg from 'pg';
import { TenantPool } from '../data/tenant-pool.js';
import { ConfigurationError, InvalidArgumentError } from '../errors/tenantry-error.js';
import type { InvitationDelivery } from '../lifecycle/onboard/invite-owner.js';
import {
  TenantOnboarding,
  type OnboardContext,
  type OnboardResult,
  type OnboardStepEvent,
} from '../lifecycle/onboard/tenant-onboarding.js';
import { RoutedTenantPool } from '../tiers/routed-tenant-pool.js';
import { TenantRouter } from '../tiers/tenant-router.js';
import { commandPool, type ConnectionOptions } from './connection.js';
import { withClusters } from './migrate-command.js';
import { existsSync } from 'node:fs';
import { migrationsWithPlugins, PLUGINS_OPTION_HELP } from './plugins-definition.js';

interface OnboardFlags {
  name: string;
  plan?: string;
  ownerEmail?: string;
  migrations: string;
  plugins?: string;
  hooks?: string;
  clusters?: string;
  reissueInvite?: boolean;
  json?: boolean;
}

/**
 * What a `--hooks` module may export (each optional). `seed` runs inside `runAs(tenant)` with a
 * RoutedTenantPool as the app role (statements go where the tenant lives); `deliverInvitation`
 * writes the owner's invitation to the application's outbox in the transaction that issued it;
 * `onStep` hears every step.
 */
export interface OnboardHooks {
  seed?: (context: OnboardContext, tools: { pool: RoutedTenantPool }) => Promise<void>;
  deliverInvitation?: (delivery: InvitationDelivery) => Promise<void>;
  onStep?: (event: OnboardStepEvent) => void | Promise<void>;
}

async function loadHooks(file: string | undefined): Promise<OnboardHooks> {
  if (!file) return {};
  const full = path.resolve(file);
  if (!existsSync(full)) throw new InvalidArgumentError(`--hooks: no such file: ${file}`, 'hooks');
  const hooks = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
  for (const name of ['seed', 'deliverInvitation', 'onStep'])
    if (hooks[name] !== undefined && typeof hooks[name] !== 'function')
      throw new InvalidArgumentError(`--hooks: ${name} must be a function`, 'hooks');
  return hooks as OnboardHooks;
}

function describe(result: OnboardResult): string {
  const t = result.target;
  const where = `${t.tier} on cluster ${t.cluster}${t.schema ? `, schema ${t.schema}` : ''}${t.database ? `, database ${t.database}` : ''}`;
  const slug = result.tenant.slug;
  const lines =
    result.outcome === 'already-onboarded'
      ? [
          `${slug} is already onboarded (${where}, completed ${result.completedAt?.toISOString()})${result.invitation ? '' : ': nothing to do'}`,
        ]
      : [
          `${result.outcome === 'resumed' ? `resumed and finished the onboarding of ${slug} (attempt ${result.attempts})` : `onboarded ${slug}`}: tenant ${result.tenant.id}, ${where}`,
        ];
  if (result.outcome !== 'already-onboarded') {
    if (result.skipped.length) lines.push(`  recorded by an earlier attempt: ${result.skipped.join(', ')}`);
    lines.push(`  ran: ${result.ran.join(', ')}`);
  }
  const inv = result.invitation;
  if (inv?.replaced) lines.push(`  the earlier owner invitation for ${inv.email} was never shown: revoked`);
  if (inv?.code)
    lines.push(
      `  owner invitation for ${inv.email}: code ${inv.code} (expires ${inv.expiresAt.toISOString()}); pass it on, it is not shown again`,
    );
  else if (inv)
    lines.push(
      `  owner invitation for ${inv.email}: ${inv.accepted ? 'already accepted, nothing issued' : inv.issued ? 'delivered' : 'issued by an earlier attempt'}`,
    );
  return lines.join('\n');
}

/**
 * `tenantry tenants onboard <slug> --name … [--plan …] [--owner-email …]`: creates, places,
 * provisions, migrates, seeds and invites in one step; run it again after a crash to finish.
 */
export function onboardCommand(globals: () => ConnectionOptions): Command {
  return new Command('onboard')
    .argument('<slug>', "the new tenant's slug")
    .description(
      'onboard a tenant in one step: create, place by the placement policy, provision, migrate, seed, invite its owner (resumable: run it again after a crash)',
    )
    .requiredOption('--name <name>', 'display name')
    .option('--plan <plan>', 'its plan (the placement policy reads it: business → schema, enterprise → database)')
    .option('--owner-email <email>', 'invite this address as its first owner')
    .option(
      '--migrations <path>',
      "the application's migrations directory (global/, tenant/), applied to a new schema or database",
      process.env.TENANTRY_MIGRATIONS_DIR ?? 'migrations',
    )
    .option('--plugins <module>', PLUGINS_OPTION_HELP)
    .option(
      '--hooks <module>',
      'a module exporting seed(context, { pool }), deliverInvitation(delivery), onStep(event)',
    )
    .option(
      '--clusters <json>',
      'other clusters\' owner URLs, JSON { "name": "postgres://…" } (default: TENANTRY_CLUSTERS)',
    )
    .option(
      '--reissue-invite',
      "revoke the owner's unaccepted invitation and issue (print) a new one, also for a finished onboarding (a lost code)",
    )
    .option('--json', 'print JSON')
    .action(async (slug: string, flags: OnboardFlags) => {
      const hooks = await loadHooks(flags.hooks);
      const result = await withClusters(globals(), flags, async (catalog, owners, db) => {
        const { rows } = await catalog.query<{ key: string; value: string }>(
          `select key, value from tenantry.meta where key in ('app_role', 'owner_role', 'support_role', 'router_role')`,
        );
        const meta = Object.fromEntries(rows.map((r) => [r.key, r.value]));
        const invitations = new TenantPool({ connectionString: db.appUrl, contextSecret: db.contextSecret, max: 2 });
        invitations.on('error', () => undefined);
        let routes: pg.Pool | undefined;
        let router: TenantRouter | undefined;
        let data: RoutedTenantPool | undefined;
        const migrations = existsSync(flags.migrations)
          ? await migrationsWithPlugins(flags.migrations, flags.plugins)
          : undefined;
        const onboarding = new TenantOnboarding({
          catalog,
          owners,
          admins: { home: db.adminUrl },
          install: {
            appRole: meta.app_role ?? db.appRole,
            ownerRole: meta.owner_role ?? db.ownerRole,
            appPassword: db.appPassword,
            ownerPassword: db.ownerPassword,
            routerRole: meta.router_role ?? db.routerRole,
            routerPassword: db.routerPassword,
            ...(meta.support_role ? { supportRole: meta.support_role, supportPassword: db.supportPassword } : {}),
            contextSecret: db.contextSecret,
          },
          ...(migrations ? { migrations } : {}),
          ...(hooks.seed
            ? {
                seed: async (context: OnboardContext) => {
                  if (!data) {
                    // routes are the router role's to read (the app role may not)
                    routes = commandPool({ connectionString: db.routerUrl, max: 2 });
                    router = new TenantRouter({ pool: routes });
                    await router.start();
                    data = new RoutedTenantPool({
                      router,
                      clusters: { home: db.appUrl },
                      contextSecret: db.contextSecret,
                    });
                  }
                  await hooks.seed!(context, { pool: data });
                },
              }
            : {}),
          invitations: { pool: invitations, ...(hooks.deliverInvitation ? { deliver: hooks.deliverInvitation } : {}) },
          onStep: async (event) => {
            if (event.phase === 'recorded' && !flags.json) process.stderr.write(`  step ${event.step}: done\n`);
            await hooks.onStep?.(event);
          },
        });
        try {
          if (!migrations && flags.migrations !== 'migrations')
            throw new ConfigurationError(`--migrations: no such directory: ${flags.migrations}`);
          return await onboarding.run(
            {
              slug,
              name: flags.name,
              ...(flags.plan !== undefined ? { plan: flags.plan } : {}),
              ...(flags.ownerEmail !== undefined ? { ownerEmail: flags.ownerEmail } : {}),
            },
            { reissueInvite: flags.reissueInvite === true },
          );
        } finally {
          await onboarding.end();
          await data?.end();
          await router?.close();
          await routes?.end();
          await invitations.end();
        }
      });
      console.log(flags.json ? JSON.stringify(result, null, 2) : describe(result));
    });
}
