import { TenantryError } from '../errors/tenantry-error.js';

/**
 * A plugin definition the registry refuses at start: a bad name, a bad route, job, event, flag or
 * setting declaration. `details.plugin` names the plugin, `details.problem` what is wrong.
 */
export class PluginInvalidError extends TenantryError {
  constructor(plugin: string, problem: string) {
    super('PLUGIN_INVALID', `Plugin "${plugin}": ${problem}`, { status: 500, details: { plugin, problem } });
  }
}

/** Two plugins with one name (or one job, route, flag or setting claimed twice). */
export class PluginDuplicateError extends TenantryError {
  constructor(plugin: string, what: string) {
    super('PLUGIN_DUPLICATE', `Plugin "${plugin}": ${what} is declared twice`, {
      status: 500,
      details: { plugin, what },
    });
  }
}

/**
 * A plugin's migrations are out of order, outside the plugin range, share a version with the
 * application's or another plugin's, or create a table they do not register as a tenant table.
 */
export class PluginMigrationInvalidError extends TenantryError {
  constructor(plugin: string, problem: string, version?: number) {
    super('PLUGIN_MIGRATION_INVALID', `Plugin "${plugin}" migrations: ${problem}`, {
      status: 500,
      details: { plugin, problem, ...(version === undefined ? {} : { version }) },
    });
  }
}

/** A plugin name the registry does not have (CLI, admin API). */
export class PluginUnknownError extends TenantryError {
  constructor(readonly plugin: string) {
    super('PLUGIN_UNKNOWN', `Unknown plugin "${plugin}"`, { status: 404, details: { plugin } });
  }
}

/**
 * The plugin is not enabled for the current tenant. At an HTTP edge it is a 404 (the route does
 * not exist for this tenant; a 403 would confirm it does); a job of it is refused with this code.
 */
export class PluginDisabledError extends TenantryError {
  constructor(readonly plugin: string) {
    super('PLUGIN_DISABLED', `Plugin "${plugin}" is not enabled for this tenant`, {
      status: 404,
      details: { plugin },
    });
  }
}
