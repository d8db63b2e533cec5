import { definePlugins } from 'tenantry/plugins';
import type { PlanName } from '../plans.js';
import { unboundServices, type PluginServices } from './plugin-services.js';
import { transcriptsPlugin } from './transcripts-plugin.js';
import { webhooksPlugin } from './webhooks-plugin.js';

/**
 * The reference server's plugins and the plans (app/plans.ts) that include them. Tenants without the plan get
 * a plugin only by an operator's override (`tenantry tenants plugins enable <slug> <plugin>`).
 */
export const PLUGIN_PLANS = {
  business: ['transcripts'],
  enterprise: ['transcripts', 'webhooks'],
} as const satisfies Partial<Record<PlanName, readonly string[]>>;

/** The plugins bound to the server's services. */
export function createPlugins(services: PluginServices) {
  return definePlugins({ plugins: [transcriptsPlugin(services), webhooksPlugin(services)], plans: PLUGIN_PLANS });
}

/**
 * The declarations alone (names, plans, migrations, settings, flags): what the CLI loads
 * (`tenantry tenants plugins … --definition app/plugins/registry.ts`, `tenantry migrate --plugins …`)
 * and what app/settings/definition.ts merges the plugins' settings from.
 */
export const plugins = createPlugins(unboundServices);
