import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import type { SettingsDefinition } from '../settings/settings-definition.js';
import { SettingsAdmin } from '../settings/settings-admin.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';

interface WriteOptions {
  definition?: string;
  actor?: string;
  reason?: string;
  json?: boolean;
}

/**
 * Loads the application's settings definition: a module (`--definition` or
 * TENANTRY_SETTINGS_MODULE) exporting it as `settings` or `default`. The CLI validates with the
 * application's own zod schema, so a value the application would refuse is refused here too.
 */
async function loadDefinition(file: string | undefined): Promise<SettingsDefinition> {
  const target = file ?? process.env.TENANTRY_SETTINGS_MODULE;
  if (!target)
    throw new ConfigurationError(
      'the settings schema is the application’s: pass --definition <module> or set TENANTRY_SETTINGS_MODULE',
    );
  const mod = (await import(pathToFileURL(path.resolve(target)).href)) as Record<string, unknown>;
  const definition = (mod.settings ?? mod.default) as SettingsDefinition | undefined;
  if (!definition || typeof definition.resolve !== 'function' || typeof definition.check !== 'function')
    throw new ConfigurationError(`${target} exports no settings definition (as "settings" or default)`);
  return definition;
}

async function withAdmin<T>(
  globals: ConnectionOptions,
  opts: WriteOptions,
  slug: string,
  fn: (admin: SettingsAdmin<never>, tenantId: string) => Promise<T>,
): Promise<T> {
  const definition = await loadDefinition(opts.definition);
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    try {
      const tenant = await new TenantCatalog(pool).get(slug);
      return await fn(new SettingsAdmin({ definition, db: pool }) as SettingsAdmin<never>, tenant.id);
    } finally {
      await pool.end();
    }
  });
}

/** A value on the command line: JSON when it parses (`50`, `true`, `"x"`, `{…}`), else the text itself. */
function parseValue(text: string, asString: boolean): unknown {
  if (asString) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function version(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new CommanderArgumentError('a change number (0, 1, 2…)');
  return n;
}

const actorOf = (opts: WriteOptions) => opts.actor ?? `cli:${os.userInfo().username}`;
const show = (v: unknown) => (v === null || v === undefined ? '—' : JSON.stringify(v));

/** `tenantry tenants settings get|set|plan|unset|history|rollback <slug> …`. */
export function settingsCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('settings').description("read and change a tenant's settings (versioned, audited)");
  const withDefinition = (c: Command) =>
    c.option(
      '--definition <module>',
      'module exporting the application’s settings definition (or TENANTRY_SETTINGS_MODULE)',
    );
  const writer = (c: Command) =>
    withDefinition(c)
      .option('--actor <who>', 'who makes the change, kept in the history (default: cli:<login>)')
      .option('--reason <why>', 'why, kept in the history and the audit log');

  withDefinition(cmd.command('get <slug> [key]'))
    .description('show the resolved settings, and which layer gave each value')
    .option('--json', 'print JSON')
    .action(async (slug: string, key: string | undefined, opts: WriteOptions) => {
      const snap = await withAdmin(globals(), opts, slug, (admin, id) => admin.resolve(id));
      const values = snap.values as Record<string, unknown>;
      const keys = key === undefined ? Object.keys(values) : [key];
      if (key !== undefined && !Object.hasOwn(values, key)) throw new CommanderArgumentError(`unknown setting ${key}`);
      if (opts.json) {
        const out = Object.fromEntries(keys.map((k) => [k, { value: values[k], source: snap.sources[k] }]));
        console.log(JSON.stringify({ plan: snap.plan, version: snap.version, settings: out }, null, 2));
        return;
      }
      console.log(
        textTable(
          ['key', 'value', 'source'],
          keys.map((k) => [k, show(values[k]), snap.sources[k] ?? '']),
        ),
      );
      console.log(`plan: ${snap.plan ?? '—'} · change ${snap.version}`);
      if (snap.ignored.length > 0) console.log(`ignored (no longer valid): ${snap.ignored.join(', ')}`);
    });

  writer(cmd.command('set <slug> <key> <value>'))
    .description('override a setting for the tenant (the value is JSON when it parses, else text)')
    .option('--string', 'take the value as text even when it parses as JSON')
    .action(async (slug: string, key: string, value: string, opts: WriteOptions & { string?: boolean }) => {
      const change = await withAdmin(globals(), opts, slug, (admin, id) =>
        admin.set(id, key, parseValue(value, !!opts.string), { actor: actorOf(opts), reason: opts.reason }),
      );
      console.log(`${slug}: ${key} set (change ${change.version})`);
    });

  writer(cmd.command('plan <slug> <plan>'))
    .description(
      'move the tenant to another plan (settings, rate limits, database limits and placement read it); audited',
    )
    .action(async (slug: string, plan: string, opts: WriteOptions) => {
      const known = await withAdmin(globals(), opts, slug, async (admin, id) => {
        await admin.setPlan(id, plan, { actor: actorOf(opts), reason: opts.reason });
        return admin.definition.plans ?? [];
      });
      // not refused: a plan may have no settings of its own (only limits); a typo is the usual cause
      if (known.length > 0 && !known.includes(plan))
        console.error(`warning: the settings definition gives plan ${plan} no values (it names ${known.join(', ')})`);
      console.log(`${slug}: plan ${plan}`);
    });

  writer(cmd.command('unset <slug> <key>'))
    .description("remove the tenant's override (the plan's or the default value applies again)")
    .action(async (slug: string, key: string, opts: WriteOptions) => {
      const change = await withAdmin(globals(), opts, slug, (admin, id) =>
        admin.unset(id, key, { actor: actorOf(opts), reason: opts.reason }),
      );
      console.log(
        change.version === null
          ? `${slug}: ${key} had no override`
          : `${slug}: ${key} unset (change ${change.version})`,
      );
    });

  withDefinition(cmd.command('history <slug>'))
    .description("the tenant's settings changes, newest first")
    .option('--key <key>', 'one key only')
    .option('--limit <n>', 'how many lines', (v) => Number(v), 50)
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: WriteOptions & { key?: string; limit: number }) => {
      const rows = await withAdmin(globals(), opts, slug, (admin, id) =>
        admin.history(id, { ...(opts.key ? { key: opts.key } : {}), limit: opts.limit }),
      );
      if (opts.json) {
        console.log(JSON.stringify(rows, null, 2));
        return;
      }
      console.log(
        textTable(
          ['change', 'when', 'key', 'action', 'old', 'new', 'who', 'why'],
          rows.map((r) => [
            String(r.version),
            r.changedAt.toISOString(),
            r.key,
            r.action,
            show(r.oldValue),
            show(r.newValue),
            r.actor,
            r.reason ?? '',
          ]),
        ),
      );
    });

  writer(cmd.command('rollback <slug> <version>'))
    .description('put the overrides back as they were right after change <version> (0: none), as a new change')
    .action(async (slug: string, to: string, opts: WriteOptions) => {
      const change = await withAdmin(globals(), opts, slug, (admin, id) =>
        admin.rollback(id, version(to), { actor: actorOf(opts), reason: opts.reason }),
      );
      console.log(
        change.version === null
          ? `${slug}: already as after change ${to}`
          : `${slug}: rolled back to change ${to} (change ${change.version}: ${change.keys.join(', ')})`,
      );
    });
  return cmd;
}
