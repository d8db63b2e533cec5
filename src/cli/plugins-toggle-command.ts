import { Command } from 'commander';
import os from 'node:os';
import type { ConnectionOptions } from './connection.js';
import { withPluginAdmin } from './plugins-definition.js';
import { TenantryError } from '../errors/tenantry-error.js';
import { REASON_MIN_VISIBLE } from '../identity/staff-access.js';
import { visibleLength } from '../identity/visible-length.js';

const WHAT = {
  enable: 'enable the plugin for the tenant, whatever its plan (audited)',
  disable: 'disable the plugin for the tenant, whatever its plan (audited; its data stays)',
  reset: "remove the tenant's override: its plan decides again (audited)",
} as const;

/** `tenantry tenants plugins enable|disable|reset <slug> <plugin> --reason …`. */
export function pluginsToggleCommand(globals: () => ConnectionOptions, verb: keyof typeof WHAT): Command {
  return new Command(verb)
    .argument('<slug>')
    .argument('<plugin>')
    .description(WHAT[verb])
    .option('--definition <module>', 'module exporting the application’s plugins (or TENANTRY_PLUGINS_MODULE)')
    .option('--actor <who>', 'who makes the change, kept in the log (default: cli:<login>)')
    .requiredOption(
      '--reason <why>',
      'why (at least 10 visible characters), kept in the log and the tenant’s audit log',
    )
    .action(async (slug: string, plugin: string, opts: { definition?: string; actor?: string; reason: string }) => {
      const reason = opts.reason.trim();
      if (visibleLength(reason) < REASON_MIN_VISIBLE)
        throw new TenantryError('REASON_INVALID', `--reason: say why, in at least ${REASON_MIN_VISIBLE} characters`, {
          status: 400,
        });
      const meta = { actor: opts.actor ?? `cli:${os.userInfo().username}`, reason };
      const now = await withPluginAdmin(globals(), opts.definition, slug, async (admin, id) => {
        await admin[verb](id, plugin, meta);
        return (await admin.list(id)).find((p) => p.plugin === plugin)!;
      });
      console.log(`${slug}: ${plugin} ${verb} → ${now.enabled ? 'enabled' : 'disabled'} (${now.source})`);
    });
}
