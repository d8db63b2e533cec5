import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { FlagsDefinition } from '../settings/flag-definition.js';
import { FlagsAdmin } from '../settings/flags-admin.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';

interface FlagOptions {
  definition?: string;
  actor?: string;
  reason?: string;
  json?: boolean;
}

/**
 * Loads the application's flags: a module (`--definition` or TENANTRY_SETTINGS_MODULE, the same
 * module as the settings) exporting them as `flags`. Values are checked against the declarations.
 */
async function loadFlags(file: string | undefined): Promise<FlagsDefinition> {
  const target = file ?? process.env.TENANTRY_SETTINGS_MODULE;
  if (!target)
    throw new ConfigurationError(
      'the flags are the application’s: pass --definition <module> or set TENANTRY_SETTINGS_MODULE',
    );
  const mod = (await import(pathToFileURL(path.resolve(target)).href)) as Record<string, unknown>;
  const flags = mod.flags as FlagsDefinition | undefined;
  if (!flags || typeof flags.evaluate !== 'function' || !Array.isArray(flags.names))
    throw new ConfigurationError(`${target} exports no flags definition (as "flags")`);
  return flags;
}

async function withFlags<T>(
  globals: ConnectionOptions,
  opts: FlagOptions,
  slug: string | undefined,
  fn: (admin: FlagsAdmin, tenantId: string) => Promise<T>,
): Promise<T> {
  const definition = await loadFlags(opts.definition);
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    try {
      const tenantId = slug === undefined ? '' : (await new TenantCatalog(pool).get(slug)).id;
      return await fn(new FlagsAdmin({ definition, db: pool }), tenantId);
    } finally {
      await pool.end();
    }
  });
}

const metaOf = (opts: FlagOptions) => ({ actor: opts.actor ?? `cli:${os.userInfo().username}`, reason: opts.reason });
const show = (v: unknown) => (v === null || v === undefined ? '—' : JSON.stringify(v));

/** A value on the command line: JSON when it parses (`true`, `10`, `"x"`), else the text itself. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function writer(c: Command): Command {
  return c
    .option(
      '--definition <module>',
      'module exporting the application’s flags as "flags" (or TENANTRY_SETTINGS_MODULE)',
    )
    .option('--actor <who>', 'who makes the change, kept in the change log (default: cli:<login>)')
    .option('--reason <why>', 'why, kept in the change log and the audit log');
}

/** `tenantry tenants flags list|set|unset <slug> …`: one tenant's flags and overrides. */
export function tenantFlagsCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('flags').description("read and override a tenant's feature flags (audited)");

  writer(cmd.command('list <slug>'))
    .description('every declared flag as the tenant gets it: value, why, override, kill switch, rollout')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: FlagOptions) => {
      const rows = await withFlags(globals(), opts, slug, (admin, id) => admin.list(id));
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      console.log(
        textTable(
          ['flag', 'value', 'why', 'override', 'killed', 'rollout'],
          rows.map((r) => [
            r.flag,
            show(r.value),
            `${r.reason} (${r.variant})`,
            show(r.override),
            r.killed ? 'yes' : 'no',
            r.rolloutPercent === null ? 'declared' : `${r.rolloutPercent}%`,
          ]),
        ),
      );
    });

  writer(cmd.command('set <slug> <flag> <value>'))
    .description('override the flag for the tenant (the value is JSON when it parses, else text)')
    .action(async (slug: string, flag: string, value: string, opts: FlagOptions) => {
      await withFlags(globals(), opts, slug, (admin, id) => admin.override(id, flag, parseValue(value), metaOf(opts)));
      console.log(`${slug}: ${flag} overridden`);
    });

  writer(cmd.command('unset <slug> <flag>'))
    .description("remove the tenant's override (plan, rollout and default apply again)")
    .action(async (slug: string, flag: string, opts: FlagOptions) => {
      await withFlags(globals(), opts, slug, (admin, id) => admin.clear(id, flag, metaOf(opts)));
      console.log(`${slug}: ${flag} override removed`);
    });
  return cmd;
}

/** `tenantry flags kill|revive|rollout|log …`: deployment-wide flag state (every tenant). */
export function flagsCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('flags').description('deployment-wide feature flag state: kill switches, rollouts');

  writer(cmd.command('kill <flag>'))
    .description("the kill switch: every tenant gets the flag's off value, overrides included")
    .action(async (flag: string, opts: FlagOptions) => {
      await withFlags(globals(), opts, undefined, (admin) => admin.kill(flag, metaOf(opts)));
      console.log(`${flag}: killed for every tenant`);
    });

  writer(cmd.command('revive <flag>'))
    .description('lift the kill switch')
    .action(async (flag: string, opts: FlagOptions) => {
      await withFlags(globals(), opts, undefined, (admin) => admin.revive(flag, metaOf(opts)));
      console.log(`${flag}: revived`);
    });

  writer(cmd.command('rollout <flag> <percent>'))
    .description('set the rollout percentage (0-100), or "declared" for the declaration’s')
    .action(async (flag: string, percent: string, opts: FlagOptions) => {
      const value = percent === 'declared' ? null : Number(percent);
      if (value !== null && !Number.isFinite(value))
        throw new CommanderArgumentError('a percentage 0-100, or declared');
      await withFlags(globals(), opts, undefined, (admin) => admin.setRollout(flag, value, metaOf(opts)));
      console.log(`${flag}: rollout ${value === null ? 'as declared' : `${value}%`}`);
    });

  writer(cmd.command('log [flag]'))
    .description('the flag change log, newest first')
    .option('--tenant <slug>', "one tenant's changes (and the deployment-wide ones)")
    .option('--limit <n>', 'how many lines', (v) => Number(v), 50)
    .option('--json', 'print JSON')
    .action(async (flag: string | undefined, opts: FlagOptions & { tenant?: string; limit: number }) => {
      const rows = await withFlags(globals(), opts, opts.tenant, (admin, id) =>
        admin.changes({ ...(id ? { tenantId: id } : {}), ...(flag ? { flag } : {}), limit: opts.limit }),
      );
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      console.log(
        textTable(
          ['when', 'flag', 'change', 'tenant', 'old', 'new', 'who', 'why'],
          rows.map((r) => [
            r.changedAt.toISOString(),
            r.flag,
            r.change,
            r.tenantId ?? '(all)',
            show(r.oldValue),
            show(r.newValue),
            r.actor,
            r.reason ?? '',
          ]),
        ),
      );
    });
  return cmd;
}
