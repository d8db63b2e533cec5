import type { DataPool } from '../recordings/recording-store.js';

/**
 * What the reference server's plugins need at run time. The registry module (app/plugins/registry.ts)
 * is also loaded by the CLI, which only reads names, plans and migrations: there the services are
 * {@link unboundServices}, and no handler ever runs.
 */
export interface PluginServices {
  /** Where tenant data lives (a RoutedTenantPool as the app role: each tenant's placement). */
  dataPool(): DataPool;
  /** How webhooks are sent (the global fetch by default; tests pass their own). */
  fetch?: typeof fetch;
  /**
   * Whether webhook endpoints may name loopback or private addresses (local development,
   * `WEBHOOKS_ALLOW_PRIVATE=1`); default false: such URLs are refused with `EGRESS_REFUSED`.
   */
  allowPrivateEgress?: boolean;
  /** Per-tenant settings, read at run time (`transcripts.language`, `webhooks.timeoutMs`…). */
  setting?(key: string): Promise<unknown>;
}

/** Services of a module loaded only for its declarations (the CLI). */
export const unboundServices: PluginServices = {
  dataPool() {
    throw new Error('plugin services are not bound here: build the plugins with createPlugins(services)');
  },
};
