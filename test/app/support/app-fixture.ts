import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { Logger } from 'pino';
import { Sessions, StaffDirectory, TenantCatalog, TenantPool } from '../../../src/index.js';
import type { GuardMode, QueryGuard } from '../../../src/guard/index.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';
import { buildServer, type ServerOptions } from '../../../app/server.js';
import { ensureExtensions, migrate } from '../../../app/migrate.js';
import { migrateHomeData } from '../../../app/tiers/tenant-tiers.js';
import { createQueryGuard, guardModeFromEnv } from '../../../app/query-guard.js';
import { TokenService } from '../../../app/auth/token-service.js';
import { addMember, createUser, type MemberRole } from '../../../app/identity/users.js';

export const PASSWORD = 'correct horse battery staple';

export interface FixtureTenant {
  id: string;
  slug: string;
}

export interface FixtureUser {
  id: string;
  email: string;
}

/** A migrated test database, two tenants and their people, and the server over the app role. */
export interface AppFixture {
  db: TestDatabase;
  app: FastifyInstance;
  /**
   * A TenantPool as the app role WITHOUT the query guard: for tests of the wall itself (RLS),
   * which send statements the guard would refuse. The server uses {@link serverPool}.
   */
  appPool: TenantPool;
  /** The server's pool: the app role, with {@link guard}. */
  serverPool: TenantPool;
  /** The server's query guard: mode `options.guard`, else TENANTRY_GUARD, else `enforce`. */
  guard: QueryGuard;
  catalog: TenantCatalog;
  jwtSecret: string;
  tokens: TokenService;
  /** Tenant A: alice (owner), bob (member), sam (admin). */
  a: FixtureTenant;
  /** Tenant B: carol (owner), sam (member). */
  b: FixtureTenant;
  users: { alice: FixtureUser; bob: FixtureUser; carol: FixtureUser; sam: FixtureUser };
  /**
   * A valid token minted directly (no sign-in): any user, any tenant, with a real server-side
   * session (a made-up session id when the tenant does not exist).
   */
  token(user: FixtureUser, tenant: FixtureTenant | string): Promise<string>;
  /** A staff member (in app_private.users and the staff directory) and a staff token for them. */
  staff: FixtureUser;
  staffToken(): Promise<string>;
  /** The server's read-only support pool. */
  supportPool: TenantPool;
  /** `app.inject` with an optional bearer token. */
  call(
    method: InjectOptions['method'],
    url: string,
    options?: { token?: string; payload?: unknown; headers?: Record<string, string> },
  ): Promise<LightMyRequestResponse>;
  /** Inserts recordings as the owner role (explicit tenant); returns their ids. */
  insertRecordings(
    tenant: FixtureTenant,
    owner: FixtureUser,
    count: number,
    options?: { sameTimestamp?: boolean; prefix?: string },
  ): Promise<string[]>;
  /** Every column of every recording of `tenant`, read as the superuser (the ground truth). */
  recordingsOf(tenant: FixtureTenant): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** Builds the fixture. `configure` may add routes before the server is made ready. */
export async function createAppFixture(
  options: {
    logger?: Logger;
    configure?: (app: FastifyInstance) => void;
    guard?: GuardMode;
    /** The server's request deadline (ServerOptions.requestDeadlineMs). */
    requestDeadlineMs?: number;
    /** Tenants by host (ServerOptions.host); off when omitted. */
    host?: ServerOptions['host'];
    /** Background jobs for the server (ServerOptions.jobs), made once the database is ready. */
    jobs?: (db: TestDatabase, serverPool: TenantPool) => Promise<NonNullable<ServerOptions['jobs']>>;
    /** Plugins per tenant (ServerOptions.plugins), made once the database is ready. */
    plugins?: (db: TestDatabase, serverPool: TenantPool) => Promise<NonNullable<ServerOptions['plugins']>>;
    /** Usage metering for the server (ServerOptions.usage), made once the database is ready. */
    usage?: (db: TestDatabase) => NonNullable<ServerOptions['usage']>;
    /** Rate limits for the server (ServerOptions.limits), made once the database is ready. */
    limits?: (db: TestDatabase) => Promise<NonNullable<ServerOptions['limits']>>;
    /** Per-tenant branding (ServerOptions.branding), made once the database is ready. */
    branding?: (db: TestDatabase) => NonNullable<ServerOptions['branding']>;
    /** Settings and flags (ServerOptions.settings), made once the database is ready. */
    settings?: (db: TestDatabase) => Promise<NonNullable<ServerOptions['settings']>>;
    /** More server options (e.g. a `signUp` or `trustProxy`), spread over the fixture's. */
    server?: Partial<ServerOptions>;
    /** Serve the operator console (ServerOptions.console) over the fixture's owner pool, with moves if given. */
    console?:
      | boolean
      | {
          moves?: (db: TestDatabase) => NonNullable<ServerOptions['console']>['moves'];
          purger?: (db: TestDatabase) => NonNullable<ServerOptions['console']>['purger'];
          settings?: (db: TestDatabase) => NonNullable<ServerOptions['console']>['settings'];
          exports?: (db: TestDatabase) => NonNullable<ServerOptions['console']>['exports'];
          observe?: (db: TestDatabase) => NonNullable<ServerOptions['console']>['observe'];
        };
  } = {},
): Promise<AppFixture> {
  const db = await createTestDatabase({ supportRole: `ts_${randomBytes(5).toString('hex')}_support` });
  await ensureExtensions(db.adminUrl);
  await migrate(db.owner, { appRole: db.appRole });
  // the tenant data's migrations, as npm start runs them (here: the home database's shared tables only)
  await migrateHomeData(db.ownerUrl);
  const catalog = new TenantCatalog(db.owner);
  const ta = await catalog.create({ slug: 'alpha', name: 'Alpha' });
  const tb = await catalog.create({ slug: 'bravo', name: 'Bravo' });
  const a = { id: ta.id, slug: ta.slug };
  const b = { id: tb.id, slug: tb.slug };
  const person = async (name: string, memberships: Array<[FixtureTenant, MemberRole]>): Promise<FixtureUser> => {
    const email = `${name}@example.test`;
    const id = await createUser(db.owner, {
      email,
      password: PASSWORD,
      displayName: name[0]!.toUpperCase() + name.slice(1),
    });
    for (const [tenant, role] of memberships) await addMember(db.owner, tenant.id, id, role);
    return { id, email };
  };
  const users = {
    alice: await person('alice', [[a, 'owner']]),
    bob: await person('bob', [[a, 'member']]),
    carol: await person('carol', [[b, 'owner']]),
    sam: await person('sam', [
      [a, 'admin'],
      [b, 'member'],
    ]),
  };
  const staff = await person('staff', []);
  await new StaffDirectory(db.owner).add(staff.id);
  const sessions = new Sessions(db.owner);
  const supportPool = new TenantPool({ connectionString: db.supportUrl!, contextSecret: db.contextSecret, max: 4 });
  const appPool = db.appPool();
  const guard = await createQueryGuard(db.owner, {
    mode: options.guard ?? guardModeFromEnv(),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const serverPool = db.appPool({ guard });
  const jwtSecret = randomBytes(32).toString('base64url');
  const tokens = new TokenService(jwtSecret);
  const app = buildServer({
    appPool: serverPool,
    supportPool,
    jwtSecret,
    logger: options.logger,
    ...(options.requestDeadlineMs === undefined ? {} : { requestDeadlineMs: options.requestDeadlineMs }),
    ...(options.host ? { host: options.host } : {}),
    ...(options.jobs ? { jobs: await options.jobs(db, serverPool) } : {}),
    ...(options.usage ? { usage: options.usage(db) } : {}),
    ...(options.plugins ? { plugins: await options.plugins(db, serverPool) } : {}),
    ...(options.limits ? { limits: await options.limits(db) } : {}),
    ...(options.branding ? { branding: options.branding(db) } : {}),
    ...(options.settings ? { settings: await options.settings(db) } : {}),
    ...(options.console
      ? {
          console: {
            catalogPool: db.owner,
            ...(typeof options.console === 'object' && options.console.moves
              ? { moves: options.console.moves(db) }
              : {}),
            ...(typeof options.console === 'object' && options.console.purger
              ? { purger: options.console.purger(db) }
              : {}),
            ...(typeof options.console === 'object' && options.console.settings
              ? { settings: options.console.settings(db) }
              : {}),
            ...(typeof options.console === 'object' && options.console.exports
              ? { exports: options.console.exports(db) }
              : {}),
            ...(typeof options.console === 'object' && options.console.observe
              ? { observe: options.console.observe(db) }
              : {}),
          },
        }
      : {}),
    ...options.server,
  });
  options.configure?.(app);
  await app.ready();
  let sequence = 0;

  return {
    db,
    app,
    appPool,
    serverPool,
    guard,
    catalog,
    jwtSecret,
    tokens,
    a,
    b,
    users,
    staff,
    supportPool,
    async token(user, tenant) {
      const tenantId = typeof tenant === 'string' ? tenant : tenant.id;
      const started = await sessions
        .start({ userId: user.id, tenantId, kind: 'user', ttlSeconds: 3600 })
        .catch(() => undefined); // no such tenant
      return tokens.issue({ userId: user.id, tenantId, sessionId: started?.sessionId ?? randomUUID() });
    },
    async staffToken() {
      const { sessionId } = await sessions.start({ userId: staff.id, kind: 'staff', ttlSeconds: 3600 });
      return tokens.issueStaff({ userId: staff.id, sessionId });
    },
    call(method, url, { token, payload, headers = {} } = {}) {
      const all = token === undefined ? headers : { authorization: `Bearer ${token}`, ...headers };
      return app.inject({
        method,
        url,
        headers: all,
        ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
      });
    },
    async insertRecordings(tenant, owner, count, { sameTimestamp = false, prefix = tenant.slug } = {}) {
      const { rows } = await db.owner.query<{ id: string }>(
        `insert into recordings (tenant_id, owner_id, title, duration_seconds, mime_type, created_at, updated_at)
         select $1, $2, $3 || ' #' || ($4 + n), n * 10, 'audio/ogg',
                case when $6 then now() else clock_timestamp() end, now()
           from generate_series(1, $5) n
         returning id`,
        [tenant.id, owner.id, prefix, sequence, count, sameTimestamp],
      );
      sequence += count;
      return rows.map((r) => r.id);
    },
    async recordingsOf(tenant) {
      const { rows } = await db.admin.query('select * from recordings where tenant_id = $1 order by id', [tenant.id]);
      return rows;
    },
    async close() {
      await app.close();
      supportPool.on('error', () => undefined); // see test-database drop(): a closing socket may be terminated
      await supportPool.end();
      await db.drop();
      // every statement the server sent for this file's requests named its tenant: whatever the
      // tests drove, the guard recorded (or, in enforce, refused) nothing. Samples hold no values.
      const unscoped = guard.report();
      if (unscoped.length > 0) {
        throw new Error(
          `the reference server sent statements the query guard flags: ${unscoped.map((e) => `${e.sample} [${e.tables.join(', ')}]`).join('; ')}`,
        );
      }
    },
  };
}

/** A UUID that names nothing. */
export const nobody = (): string => randomUUID();

/** Every tenant route, with a body where it takes one; `:id` is replaced by `id`. */
export function tenantRoutes(id: string): Array<{ method: InjectOptions['method']; url: string; payload?: unknown }> {
  return [
    { method: 'GET', url: '/me' },
    { method: 'GET', url: '/recordings' },
    { method: 'POST', url: '/recordings', payload: { title: 'intruder', durationSeconds: 1, mimeType: 'audio/ogg' } },
    { method: 'GET', url: `/recordings/${id}` },
    { method: 'PATCH', url: `/recordings/${id}`, payload: { title: 'changed by an intruder' } },
    { method: 'DELETE', url: `/recordings/${id}` },
  ];
}
