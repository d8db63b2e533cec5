import type { z } from 'zod';
import type { DefineJobOptions, EnqueueOptions, JobContext } from '../jobs/tenant-jobs.js';
import type { FlagDeclaration } from '../settings/flag-definition.js';
import type { MigrationScope } from '../tiers/migrate/migration-files.js';
import { PluginInvalidError, PluginMigrationInvalidError } from './plugin-errors.js';

/** HTTP methods a plugin route may use. */
export type PluginRouteMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** A route handler, in the web framework's own types (Fastify's request and reply, for instance). */
export type PluginRouteHandler<Req, Rep> = (request: Req, reply: Rep) => unknown;

/** The Fastify-like registrar a plugin declares its routes on. */
export interface PluginRoutes<Req = unknown, Rep = unknown> {
  get(path: string, handler: PluginRouteHandler<Req, Rep>): void;
  post(path: string, handler: PluginRouteHandler<Req, Rep>): void;
  put(path: string, handler: PluginRouteHandler<Req, Rep>): void;
  patch(path: string, handler: PluginRouteHandler<Req, Rep>): void;
  delete(path: string, handler: PluginRouteHandler<Req, Rep>): void;
}

/** What a plugin's handlers get from the host: its name and its own job queue. */
export interface PluginContext {
  readonly plugin: string;
  /**
   * Enqueues one of this plugin's jobs (`job` without the plugin prefix) for the current tenant.
   * Throws PLUGIN_DISABLED when the plugin is off for the tenant, CONFIGURATION_ERROR when the
   * host has no jobs.
   */
  enqueue<T>(job: string, payload: T, options?: EnqueueOptions): Promise<string>;
}

/** An event handler: runs inside the tenant's `runAs`, only when the plugin is enabled for it. */
export type PluginEventHandler = (payload: unknown, ctx: PluginContext) => unknown;

/** A job of a plugin: queue `<plugin>.<job>`, run only for tenants that have the plugin. */
export interface PluginJob<T = never> {
  handler: (payload: T, job: JobContext, ctx: PluginContext) => unknown;
  /** Retries, backoff, run timeout (tenantry/jobs' define options; plugin jobs are tenant jobs). */
  options?: Omit<DefineJobOptions<T>, 'global' | 'onDeadLetter' | 'gate'>;
}

/**
 * One migration of a plugin. `version` is its number in the application's migration sequence:
 * 1000 or above (the plugin range: application migrations keep their small numbers), increasing
 * in the order declared, unique across the application and every plugin. Tenant migrations
 * (the default scope) use unqualified names and must register each table they create
 * (`select tenantry.register_tenant_table('t')`): plugin tables are tenant tables, RLS forced.
 */
export interface PluginMigration {
  version: number;
  /** snake_case; recorded as `<version>_<plugin>_<name>.sql`. */
  name: string;
  scope?: MigrationScope;
  sql: string;
}

/** What {@link definePlugin} takes. */
export interface PluginDefinitionInput<Req = unknown, Rep = unknown> {
  /** 2-40 of `[a-z0-9_]`, starting with a letter: its flags, settings, jobs and migrations carry it. */
  name: string;
  /** The plugin's own version (shown by `tenantry tenants plugins list`). */
  version: string;
  description?: string;
  /** Declares the plugin's routes; each answers 404 for a tenant without the plugin. */
  routes?: (routes: PluginRoutes<Req, Rep>, ctx: PluginContext) => void;
  /** Event handlers by event name (`recording.created`), called by `PluginHost.emit`. */
  events?: Record<string, PluginEventHandler>;
  /** Jobs by short name; the queue is `<plugin>.<name>`. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each job has its own payload type
  jobs?: Record<string, PluginJob<any>>;
  migrations?: readonly PluginMigration[];
  /** The plugin's settings (a zod object); in the application's settings as `<plugin>.<key>`. */
  settings?: z.ZodObject;
  /** The plugin's feature flags; in the flags as `<plugin>.<flag>`. */
  flags?: Record<string, FlagDeclaration>;
}

/** A validated plugin (see {@link definePlugin}). */
export interface PluginDefinition<Req = unknown, Rep = unknown> extends Readonly<PluginDefinitionInput<Req, Rep>> {
  readonly kind: 'tenantry.plugin';
  readonly migrations: readonly PluginMigration[];
}

/** A plugin's name. */
export const PLUGIN_NAME = /^[a-z][a-z0-9_]{1,39}$/;
const VERSION = /^\d{1,6}\.\d{1,6}\.\d{1,6}(?:[-+][0-9A-Za-z.-]{1,40})?$/;
const SHORT_NAME = /^[a-z][a-z0-9_-]{0,39}$/;
const EVENT_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;
const MIGRATION_NAME = /^[a-z0-9_]{1,60}$/;
/** Plugin migrations number from here on, so they never meet an application's `001_…`. */
export const PLUGIN_MIGRATION_MIN = 1000;
const MIGRATION_MAX = 999_999_999;

/**
 * Declares a plugin: its routes, event and job handlers, migrations, settings and flags. The
 * declaration is checked here (names, versions, migration order); {@link definePlugins} checks
 * the plugins together. A plugin is a value: build it in a factory that receives what it needs
 * (a data pool, a logger).
 *
 * @example
 * export const notesExport = definePlugin({
 *   name: 'notes_export',
 *   version: '1.0.0',
 *   routes(r) { r.get('/exports', async () => ({ items: [] })) },
 *   migrations: [{ version: 1001, name: 'exports', sql: 'create table exports (…); select tenantry.register_tenant_table(\'exports\');' }],
 * });
 */
export function definePlugin<Req = unknown, Rep = unknown>(
  input: PluginDefinitionInput<Req, Rep>,
): PluginDefinition<Req, Rep> {
  const name = String(input?.name);
  if (!PLUGIN_NAME.test(name))
    throw new PluginInvalidError(name.slice(0, 60), `the name must match ${PLUGIN_NAME.source}`);
  if (typeof input.version !== 'string' || !VERSION.test(input.version))
    throw new PluginInvalidError(name, 'version must be a semantic version such as 1.0.0');
  if (input.routes !== undefined && typeof input.routes !== 'function')
    throw new PluginInvalidError(name, 'routes must be a function of the route registrar');
  for (const [event, handler] of Object.entries(input.events ?? {})) {
    if (!EVENT_NAME.test(event)) throw new PluginInvalidError(name, `event "${event}" must match ${EVENT_NAME.source}`);
    if (typeof handler !== 'function') throw new PluginInvalidError(name, `event "${event}" needs a handler`);
  }
  for (const [job, spec] of Object.entries(input.jobs ?? {})) {
    if (!SHORT_NAME.test(job)) throw new PluginInvalidError(name, `job "${job}" must match ${SHORT_NAME.source}`);
    if (typeof spec?.handler !== 'function') throw new PluginInvalidError(name, `job "${job}" needs a handler`);
  }
  for (const flag of Object.keys(input.flags ?? {}))
    if (!SHORT_NAME.test(flag)) throw new PluginInvalidError(name, `flag "${flag}" must match ${SHORT_NAME.source}`);
  if (input.settings !== undefined) {
    const shape = (input.settings as { shape?: unknown }).shape;
    if (typeof shape !== 'object' || shape === null)
      throw new PluginInvalidError(name, 'settings must be a zod object schema');
    for (const key of Object.keys(shape))
      if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(key))
        throw new PluginInvalidError(name, `setting "${key}" must be 1-64 of [A-Za-z0-9_], starting with a letter`);
  }
  const migrations = checkMigrations(name, input.migrations ?? []);
  return Object.freeze({ ...input, name, kind: 'tenantry.plugin' as const, migrations });
}

function checkMigrations(plugin: string, migrations: readonly PluginMigration[]): readonly PluginMigration[] {
  let last = 0;
  const out: PluginMigration[] = [];
  for (const m of migrations) {
    const { version } = m;
    if (!Number.isInteger(version) || version < PLUGIN_MIGRATION_MIN || version > MIGRATION_MAX)
      throw new PluginMigrationInvalidError(
        plugin,
        `version ${String(version)} is outside the plugin range ${PLUGIN_MIGRATION_MIN}-${MIGRATION_MAX}`,
        Number.isInteger(version) ? version : undefined,
      );
    if (version <= last)
      throw new PluginMigrationInvalidError(
        plugin,
        `version ${version} comes after ${last}: declare migrations in increasing order`,
        version,
      );
    last = version;
    if (typeof m.name !== 'string' || !MIGRATION_NAME.test(m.name))
      throw new PluginMigrationInvalidError(plugin, `migration ${version} needs a snake_case name`, version);
    const scope = m.scope ?? 'tenant';
    if (scope !== 'tenant' && scope !== 'global')
      throw new PluginMigrationInvalidError(plugin, `migration ${version}: scope is tenant or global`, version);
    if (typeof m.sql !== 'string' || m.sql.trim() === '')
      throw new PluginMigrationInvalidError(plugin, `migration ${version} has no SQL`, version);
    checkTables(plugin, version, scope, m.sql);
    out.push(Object.freeze({ version, name: m.name, scope, sql: m.sql }));
  }
  return Object.freeze(out);
}

// Not a SQL parser: a check that catches the usual slip (a table created, never registered).
// The database's own deny-by-default trigger and `tenantry doctor` are the walls behind it.
const CREATE_TABLE =
  /\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?("?[A-Za-z_][A-Za-z0-9_$]*"?(?:\."?[A-Za-z_][A-Za-z0-9_$]*"?)?)/gi;

function checkTables(plugin: string, version: number, scope: MigrationScope, sql: string): void {
  const text = sql.replace(/--[^\n]*/g, '');
  for (const match of text.matchAll(CREATE_TABLE)) {
    const table = match[1]!;
    if (scope === 'global')
      throw new PluginMigrationInvalidError(
        plugin,
        `migration ${version} creates table ${table} in a global migration: plugin tables are tenant tables`,
        version,
      );
    if (table.includes('.') || table.includes('"'))
      throw new PluginMigrationInvalidError(
        plugin,
        `migration ${version}: name table ${table} unqualified (the tenant location's schema comes first)`,
        version,
      );
    const registered = new RegExp(`register_tenant_table\\s*\\(\\s*'${table}'`, 'i');
    if (!registered.test(text))
      throw new PluginMigrationInvalidError(
        plugin,
        `migration ${version} creates table ${table} without select tenantry.register_tenant_table('${table}')`,
        version,
      );
  }
}
