import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { defineFlags, type FlagDeclaration, type FlagsDefinition } from '../settings/flag-definition.js';
import type { Migration } from '../tiers/migrate/migration-files.js';
import type { PluginDefinition, PluginRouteMethod } from './plugin-definition.js';
import {
  PluginDuplicateError,
  PluginInvalidError,
  PluginMigrationInvalidError,
  PluginUnknownError,
} from './plugin-errors.js';

/** What {@link definePlugins} takes. */
export interface PluginRegistryInput {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- plugins of any web framework's request types
  plugins: readonly PluginDefinition<any, any>[];
  /** Plan entitlements: the plugins each plan includes (`{ pro: ['transcripts'] }`). */
  plans?: Readonly<Record<string, readonly string[]>>;
}

/** One route a plugin declares. */
export interface PluginRouteDeclaration {
  plugin: string;
  method: PluginRouteMethod;
  path: string;
}

/**
 * The application's plugins, checked together: names, routes, jobs, flags, settings and
 * migration versions unique; plans naming known plugins. A pure value (no database), so the CLI
 * loads the very same module as the server.
 */
export interface PluginRegistry {
  readonly names: readonly string[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- see PluginRegistryInput
  get(name: string): PluginDefinition<any, any>;
  /** The flag that says whether `plugin` is enabled for a tenant: `plugins.<name>`. */
  enablementFlag(plugin: string): string;
  /**
   * Every flag of the plugins: the enablement flags (off by default, on for the plans entitled)
   * and each plugin's own flags as `<plugin>.<flag>`. Spread them into the application's
   * `defineFlags` to evaluate plugin flags through its OpenFeature client.
   */
  readonly flagDeclarations: Readonly<Record<string, FlagDeclaration>>;
  /** {@link flagDeclarations} as a FlagsDefinition. */
  readonly flags: FlagsDefinition;
  /** The plugins' settings as `<plugin>.<key>` zod fields: spread them into the application's schema. */
  readonly settingsShape: Readonly<Record<string, z.ZodType>>;
  readonly routes: readonly PluginRouteDeclaration[];
  /** Plans that include `plugin`. */
  plansOf(plugin: string): readonly string[];
  /**
   * The application's migrations with every plugin's, in version order, for `migrateEverywhere`,
   * `migrateLocation` and `tenantry migrate --plugins`: plugin tables are created wherever
   * tenants live (shared tables, tenant schemas, tenant databases), registered as tenant tables.
   * A version shared with the application's is refused (PLUGIN_MIGRATION_INVALID).
   */
  migrations(app?: readonly Migration[]): Migration[];
}

const METHODS: readonly PluginRouteMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Checks the application's plugins together and answers their registry.
 *
 * @example
 * export const plugins = definePlugins({ plugins: [transcripts, webhooks], plans: { pro: ['transcripts'] } });
 */
export function definePlugins(input: PluginRegistryInput): PluginRegistry {
  const byName = new Map<string, PluginDefinition>();
  for (const p of input.plugins) {
    if (p?.kind !== 'tenantry.plugin')
      throw new PluginInvalidError(String((p as { name?: unknown })?.name), 'declare it with definePlugin()');
    if (byName.has(p.name)) throw new PluginDuplicateError(p.name, 'the plugin');
    byName.set(p.name, p);
  }
  const plans = new Map<string, string[]>();
  for (const [plan, names] of Object.entries(input.plans ?? {})) {
    for (const name of names) {
      if (!byName.has(name)) throw new PluginUnknownError(name);
      plans.set(name, [...(plans.get(name) ?? []), plan]);
    }
  }
  const flagDeclarations: Record<string, FlagDeclaration> = {};
  const settingsShape: Record<string, z.ZodType> = {};
  const routes: PluginRouteDeclaration[] = [];
  const routeKeys = new Map<string, string>();
  const versions = new Map<number, string>();
  for (const p of byName.values()) {
    flagDeclarations[`plugins.${p.name}`] = {
      off: false,
      on: true,
      plans: plans.get(p.name) ?? [],
      description: `plugin ${p.name} enabled`,
    };
    for (const [flag, d] of Object.entries(p.flags ?? {})) flagDeclarations[`${p.name}.${flag}`] = d;
    for (const [key, type] of Object.entries((p.settings?.shape ?? {}) as Record<string, z.ZodType>))
      settingsShape[`${p.name}.${key}`] = type;
    for (const route of collectRoutes(p)) {
      const key = `${route.method} ${route.path}`;
      const other = routeKeys.get(key);
      if (other !== undefined) throw new PluginDuplicateError(p.name, `route ${key} (also ${other}'s)`);
      routeKeys.set(key, p.name);
      routes.push(route);
    }
    for (const m of p.migrations) {
      const other = versions.get(m.version);
      if (other !== undefined)
        throw new PluginMigrationInvalidError(p.name, `version ${m.version} is also plugin ${other}'s`, m.version);
      versions.set(m.version, p.name);
    }
  }
  const flags = defineFlags(flagDeclarations);
  const pluginMigrations: Migration[] = [...byName.values()]
    .flatMap((p) =>
      p.migrations.map((m) => ({
        version: m.version,
        name: `${m.version}_${p.name}_${m.name}.sql`,
        scope: m.scope ?? 'tenant',
        sql: m.sql,
        checksum: createHash('sha256').update(m.sql).digest('hex'),
      })),
    )
    .sort((a, b) => a.version - b.version);
  const get = (name: string): PluginDefinition => {
    const p = byName.get(name);
    if (!p) throw new PluginUnknownError(name);
    return p;
  };
  return Object.freeze({
    names: Object.freeze([...byName.keys()]),
    get,
    enablementFlag: (plugin: string) => `plugins.${get(plugin).name}`,
    flagDeclarations: Object.freeze(flagDeclarations),
    flags,
    settingsShape: Object.freeze(settingsShape),
    routes: Object.freeze(routes),
    plansOf: (plugin: string) => Object.freeze([...(plans.get(get(plugin).name) ?? [])]),
    migrations(app: readonly Migration[] = []): Migration[] {
      for (const m of app) {
        const owner = versions.get(m.version);
        if (owner !== undefined)
          throw new PluginMigrationInvalidError(
            owner,
            `version ${m.version} is also the application's ${m.scope}/${m.name}`,
            m.version,
          );
      }
      return [...app, ...pluginMigrations].sort((a, b) => a.version - b.version);
    },
  });
}

// the routes a plugin declares, by calling its `routes` with a recorder (no handler runs)
function collectRoutes(p: PluginDefinition): PluginRouteDeclaration[] {
  const out: PluginRouteDeclaration[] = [];
  if (!p.routes) return out;
  const add = (method: PluginRouteMethod) => (path: string, handler: unknown) => {
    if (typeof path !== 'string' || !/^\/[A-Za-z0-9_.~:/-]{0,200}$/.test(path) || path.includes('//'))
      throw new PluginInvalidError(p.name, `route path "${String(path).slice(0, 80)}" must be an absolute path`);
    if (typeof handler !== 'function') throw new PluginInvalidError(p.name, `route ${method} ${path} needs a handler`);
    out.push({ plugin: p.name, method, path });
  };
  const recorder = Object.fromEntries(METHODS.map((m) => [m.toLowerCase(), add(m)]));
  p.routes(recorder as never, {
    plugin: p.name,
    enqueue: () => Promise.reject(new PluginInvalidError(p.name, 'enqueue while declaring routes')),
  });
  return out;
}
