/**
 * The database of the identity examples: a throwaway database with its own roles and Tenantry
 * installed, on an embedded PostgreSQL (started here, stopped by close()) or, when DATABASE_URL
 * is set (a superuser URL), on that server. close() drops the database and its roles again.
 *
 * It also creates the one tenant table the examples need, `members (tenant_id, user_id, role)`,
 * registered with tenantry.register_tenant_table like an application's migration would.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { install, TenantPool } from '../../src/index.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/embedded/index.js';

export interface ExampleDatabase {
  /** The owner role (BYPASSRLS): migrations, the tenant catalog, starting sessions. Never the request path. */
  owner: pg.Pool;
  /** The application role: NOSUPERUSER, NOBYPASSRLS, owns nothing. The request path's only pool. */
  app: TenantPool;
  /** The read-only support role: staff's audited cross-tenant reads. */
  support: TenantPool;
  /** The owner role's URL (migrations, LISTEN for the settings feed). */
  ownerUrl: string;
  close(): Promise<void>;
}

export async function openExampleDatabase(): Promise<ExampleDatabase> {
  let server: EmbeddedServer | undefined;
  let rootUrl = process.env.DATABASE_URL;
  if (!rootUrl) {
    server = await startEmbeddedPostgres();
    rootUrl = server.adminUrl;
  }
  const name = `example_${randomBytes(4).toString('hex')}`;
  const roles = { appRole: `${name}_app`, ownerRole: `${name}_owner`, supportRole: `${name}_support` };
  const password = randomBytes(18).toString('base64url');
  const contextSecret = randomBytes(32).toString('base64url');
  const urlOf = (user?: string): string => {
    const url = new URL(rootUrl);
    url.pathname = `/${name}`;
    if (user) {
      url.username = user;
      url.password = password;
    }
    return url.toString();
  };

  const root = new pg.Client({ connectionString: rootUrl });
  await root.connect();
  await root.query(`create database ${name}`);
  await root.end();
  await install(urlOf(), {
    ...roles,
    appPassword: password,
    ownerPassword: password,
    supportPassword: password,
    contextSecret,
  });

  const owner = new pg.Pool({ connectionString: urlOf(roles.ownerRole), max: 2 });
  await owner.query(`
    create table public.members (
      tenant_id uuid not null default tenantry.current_tenant_id(),
      user_id uuid not null,
      role text not null default 'member',
      primary key (tenant_id, user_id));
    select tenantry.register_tenant_table('public.members');
    -- membership is control plane: pinned (home_tenant_id), readable while the tenant is suspended
    select tenantry.pin_tenant_table('public.members');`);
  const app = new TenantPool({ connectionString: urlOf(roles.appRole), contextSecret, max: 4 });
  const support = new TenantPool({ connectionString: urlOf(roles.supportRole), contextSecret, max: 2 });
  await app.assertSafeRole();

  return {
    owner,
    app,
    support,
    ownerUrl: urlOf(roles.ownerRole),
    async close() {
      // end() resolves before every socket has closed; DROP DATABASE … WITH (FORCE) below may
      // terminate a backend that is still closing (57P01): expected, not an error of the example
      for (const pool of [owner, app, support]) pool.on('error', () => undefined);
      await Promise.all([owner.end(), app.end(), support.end()]);
      const admin = new pg.Client({ connectionString: rootUrl });
      await admin.connect();
      try {
        await admin.query(`drop database ${name} with (force)`);
        for (const role of Object.values(roles)) await admin.query(`drop role ${role}`);
      } finally {
        await admin.end();
      }
      await server?.stop();
    },
  };
}
