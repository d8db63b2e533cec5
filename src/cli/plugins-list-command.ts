import { Command } from 'commander';
import type { ConnectionOptions } from './connection.js';
import { withPluginAdmin } from './plugins-definition.js';
import { textTable } from './text-table.js';

/** `tenantry tenants plugins list <slug>`: every plugin, on or off for the tenant, and why. */
export function pluginsListCommand(globals: () => ConnectionOptions): Command {
  return new Command('list')
    .argument('<slug>')
    .description('every plugin, whether the tenant has it and why (plan, override, killed, off)')
    .option('--definition <module>', 'module exporting the application’s plugins (or TENANTRY_PLUGINS_MODULE)')
    .option('--history', 'also the enablement changes, newest first')
    .option('--json', 'print JSON')
    .action(async (slug: string, opts: { definition?: string; history?: boolean; json?: boolean }) => {
      const { plugins, history } = await withPluginAdmin(globals(), opts.definition, slug, async (admin, id) => ({
        plugins: await admin.list(id),
        history: opts.history ? await admin.history(id) : [],
      }));
      if (opts.json) {
        console.log(JSON.stringify(opts.history ? { plugins, history } : plugins, null, 2));
        return;
      }
      console.log(
        textTable(
          ['plugin', 'version', 'enabled', 'source', 'plans'],
          plugins.map((p) => [p.plugin, p.version, p.enabled ? 'yes' : 'no', p.source, p.plans.join(', ')]),
        ),
      );
      if (opts.history)
        console.log(
          textTable(
            ['when', 'plugin', 'change', 'who', 'why'],
            history.map((h) => [h.changedAt.toISOString(), h.plugin, h.change, h.actor, h.reason ?? '']),
          ),
        );
    });
}
