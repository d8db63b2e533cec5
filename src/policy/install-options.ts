import { validIdentifier } from './identifiers.js';

/** How policies trust the tenant context value. See docs/security.md. */
export type ContextMode = 'signed' | 'unsigned';

/**
 * Default timeouts of the app role (`ALTER ROLE … SET`), so that every lock and every wait the
 * application takes is bounded (docs/security.md, "Timeouts"). PostgreSQL interval syntax.
 */
export interface AppRoleTimeouts {
  /** `statement_timeout`. Default `30s`. */
  statementTimeout?: string;
  /** `lock_timeout`. Default `5s`. */
  lockTimeout?: string;
  /** `idle_in_transaction_session_timeout`. Default `60s`. */
  idleInTransactionSessionTimeout?: string;
}

/** The defaults of {@link AppRoleTimeouts}. */
export const DEFAULT_APP_ROLE_TIMEOUTS: Readonly<Required<AppRoleTimeouts>> = Object.freeze({
  statementTimeout: '30s',
  lockTimeout: '5s',
  idleInTransactionSessionTimeout: '60s',
});

/** Options of `tenantry install`. Every name is validated before it reaches SQL. */
export interface InstallOptions {
  /** Role the application connects as: owns nothing, NOSUPERUSER, NOBYPASSRLS. Default `tenantry_app`. */
  appRole?: string;
  /** Role that owns tables and runs DDL (migrations, control plane). Default `tenantry_owner`. */
  ownerRole?: string;
  /**
   * Read-only role for audited cross-tenant support reads (`StaffAccess.read`): NOSUPERUSER,
   * NOBYPASSRLS, SELECT on tenant tables only, and only on a tenant some staff member holds an
   * open `read` grant on. Not created when omitted.
   */
  supportRole?: string;
  /**
   * Role the data plane's `TenantRouter` connects as to read routes (where each tenant lives):
   * NOSUPERUSER, NOBYPASSRLS, owns nothing, EXECUTE on `tenantry.route_of` and
   * `tenantry.routes_since` and nothing else. Routing data is its own (not the app role's): SQL
   * injected under one tenant cannot list every placed tenant's schema and database. Default
   * `tenantry_router`.
   */
  routerRole?: string;
  /**
   * Passwords for the login roles. Install sets one only where the role has none yet (it was just
   * created): an existing password is kept, so a deploy job that passes another one never locks
   * the running app out. Change one with `tenantry rotate password` ({@link rotatePassword}).
   */
  appPassword?: string;
  ownerPassword?: string;
  supportPassword?: string;
  routerPassword?: string;
  /** Schemas holding application tables. Default `['public']`. */
  dataSchemas?: string[];
  /** `signed` (default): the context carries an HMAC PostgreSQL verifies. `unsigned`: a bare uuid, faster, forgeable by injected SQL. */
  contextMode?: ContextMode;
  /** Install the event trigger that locks every new table (needs superuser). Default true. */
  eventTrigger?: boolean;
  /**
   * The app role's statement, lock and idle-in-transaction timeouts. A timeout given here is
   * set on every install; one left out is set to its default only where the role has none yet
   * (a value an operator chose is kept). `false`: leave the role's settings alone.
   */
  appRoleTimeouts?: AppRoleTimeouts | false;
}

/** Resolved install options with defaults applied and names validated. */
export interface ResolvedInstallOptions {
  appRole: string;
  ownerRole: string;
  supportRole: string | undefined;
  routerRole: string;
  appPassword: string | undefined;
  ownerPassword: string | undefined;
  supportPassword: string | undefined;
  routerPassword: string | undefined;
  dataSchemas: string[];
  contextMode: ContextMode;
  eventTrigger: boolean;
  /** Each timeout with `force` when the caller gave it (set always) or not (set where missing); undefined: leave alone. */
  appRoleTimeouts: { setting: string; value: string; force: boolean }[] | undefined;
}

const INTERVAL = /^[0-9]{1,9}\s?(ms|s|min|h|d)?$/;

/** Applies defaults and validates every identifier. */
export function resolveInstallOptions(options: InstallOptions = {}): ResolvedInstallOptions {
  const appRole = validIdentifier(options.appRole ?? 'tenantry_app', 'app role');
  const ownerRole = validIdentifier(options.ownerRole ?? 'tenantry_owner', 'owner role');
  if (appRole === ownerRole) throw new Error('The app role and the owner role must differ');
  const supportRole =
    options.supportRole === undefined ? undefined : validIdentifier(options.supportRole, 'support role');
  if (supportRole !== undefined && (supportRole === appRole || supportRole === ownerRole))
    throw new Error('The support role must differ from the app and owner roles');
  const routerRole = validIdentifier(options.routerRole ?? 'tenantry_router', 'router role');
  if (routerRole === appRole || routerRole === ownerRole || routerRole === supportRole)
    throw new Error('The router role must differ from the app, owner and support roles');
  return {
    appRole,
    ownerRole,
    supportRole,
    routerRole,
    appPassword: options.appPassword,
    ownerPassword: options.ownerPassword,
    supportPassword: options.supportPassword,
    routerPassword: options.routerPassword,
    dataSchemas: (options.dataSchemas ?? ['public']).map((s) => validIdentifier(s, 'schema')),
    contextMode: options.contextMode ?? 'signed',
    eventTrigger: options.eventTrigger ?? true,
    appRoleTimeouts: resolveTimeouts(options.appRoleTimeouts),
  };
}

function resolveTimeouts(given: AppRoleTimeouts | false | undefined): ResolvedInstallOptions['appRoleTimeouts'] {
  if (given === false) return undefined;
  const settings: [keyof AppRoleTimeouts, string][] = [
    ['statementTimeout', 'statement_timeout'],
    ['lockTimeout', 'lock_timeout'],
    ['idleInTransactionSessionTimeout', 'idle_in_transaction_session_timeout'],
  ];
  return settings.map(([key, setting]) => {
    const value = given?.[key] ?? DEFAULT_APP_ROLE_TIMEOUTS[key];
    if (typeof value !== 'string' || !INTERVAL.test(value))
      throw new Error(`Invalid ${key}: a duration such as '30s', '500ms' or '2min'`);
    return { setting, value, force: given?.[key] !== undefined };
  });
}
