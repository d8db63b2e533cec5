import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { loadMigrations, type Migration } from '../tiers/migrate/migration-files.js';
import { PluginAdmin } from '../plugins/plugin-admin.js';
import type { PluginRegistry } from '../plugins/plugin-registry.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';

/**
 * Loads the application's plugin registry: a module (`--definition` or TENANTRY_PLUGINS_MODULE)
 * exporting `definePlugins(…)` as `plugins` or `default`, so the CLI knows the same plugins and
 * plan entitlements as the server.
 */
export async function loadPluginRegistry(file: string | undefined): Promise<PluginRegistry> {
  const target = file ?? process.env.TENANTRY_PLUGINS_MODULE;
  if (!target)
    throw new ConfigurationError(
      'the plugins are the application’s: pass --definition <module> or set TENANTRY_PLUGINS_MODULE',
    );
  const mod = (await import(pathToFileURL(path.resolve(target)).href)) as Record<string, unknown>;
  const registry = (mod.plugins ?? mod.default) as PluginRegistry | undefined;
  if (!registry || !Array.isArray(registry.names) || typeof registry.enablementFlag !== 'function')
    throw new ConfigurationError(`${target} exports no plugin registry (definePlugins(…) as "plugins" or default)`);
  return registry;
}

/** Runs `fn` with a PluginAdmin over the catalog (owner role) and the tenant's id. */
export async function withPluginAdmin<T>(
  globals: ConnectionOptions,
  definition: string | undefined,
  slug: string,
  fn: (admin: PluginAdmin, tenantId: string) => Promise<T>,
): Promise<T> {
  const registry = await loadPluginRegistry(definition);
  return withDatabase(globals, async (db) => {
    const url =
      process.env.TENANTRY_OWNER_DATABASE_URL ??
      (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
    const pool = commandPool({ connectionString: url, max: 2 });
    try {
      const tenant = await new TenantCatalog(pool).get(slug);
      return await fn(new PluginAdmin({ registry, db: pool }), tenant.id);
    } finally {
      await pool.end();
    }
  });
}

/** The help text of `--plugins <module>` on the commands that apply migrations (migrate, onboard, import --ddl, move --ddl). */
export const PLUGINS_OPTION_HELP =
  "also the migrations of the application's plugins (a module exporting definePlugins(…); or TENANTRY_PLUGINS_MODULE)";

/**
 * A migrations directory, with the plugins' migrations when `plugins` (or
 * TENANTRY_PLUGINS_MODULE) names the application's registry: what `tenantry migrate --plugins`
 * applies, so a location made by another command is versioned the same way.
 */
export async function migrationsWithPlugins(dir: string, plugins: string | undefined): Promise<string | Migration[]> {
  const module = plugins ?? process.env.TENANTRY_PLUGINS_MODULE;
  if (!module) return dir;
  const registry = await loadPluginRegistry(module);
  return registry.migrations(await loadMigrations(dir));
}
