import { Command } from 'commander';
import type { ConnectionOptions } from './connection.js';
import { pluginsListCommand } from './plugins-list-command.js';
import { pluginsToggleCommand } from './plugins-toggle-command.js';

/** `tenantry tenants plugins list|enable|disable|reset <slug> [plugin]`. */
export function pluginsCommand(globals: () => ConnectionOptions): Command {
  const cmd = new Command('plugins').description("the tenant's plugins: by plan, or an admin's override (audited)");
  cmd.addCommand(pluginsListCommand(globals));
  for (const verb of ['enable', 'disable', 'reset'] as const) cmd.addCommand(pluginsToggleCommand(globals, verb));
  return cmd;
}
