import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { install, type InstallRunOptions } from '../../src/policy/installer.js';
import { TenantPool, type TenantPoolConfig } from '../../src/data/tenant-pool.js';
import { dropDatabase } from './drop-database.js';

export const ROLE_PASSWORD = 'tenantry-test-password';

/** A fresh database with its own roles, Tenantry installed, for one test file. */
export interface TestDatabase {
  name: string;
  appRole: string;
  ownerRole: string;
  contextSecret: string;
  /** Superuser on this database: plants defects, checks what really is stored. */
  adminUrl: string;
  /** The owner role: runs the app's DDL, like migrations would. */
  ownerUrl: string;
  /** The application role; through pgbouncer when TENANTRY_TEST_APP_PORT is set. */
  appUrl: string;
  /** The application role straight to the server (LISTEN does not survive transaction pooling). */
  directAppUrl?: string;
  /** The support role (only when created with `supportRole`). */
  supportUrl: string | undefined;
  /** The router role: what a TenantRouter reads routes as (the app role may not). */
  routerRole: string;
  routerUrl: string;
  admin: pg.Pool;
  owner: pg.Pool;
  /** A TenantPool connected as the app role. Closed by drop(). */
  appPool(config?: TenantPoolConfig): TenantPool;
  drop(): Promise<void>;
}

function withDatabase(url: string, database: string, user?: string, port?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user) {
    u.username = user;
    u.password = ROLE_PASSWORD;
  }
  if (port) u.port = port;
  return u.toString();
}

/** Creates `tt_<random>` with roles `tt_<random>_app/_owner` and runs install on it. */
export async function createTestDatabase(options: InstallRunOptions = {}): Promise<TestDatabase> {
  const rootUrl = inject('adminUrl');
  const name = `tt_${randomBytes(5).toString('hex')}`;
  const root = new pg.Client({ connectionString: rootUrl });
  await root.connect();
  await root.query(`create database ${name}`);
  await root.end();
  const adminUrl = withDatabase(rootUrl, name);
  const appRole = options.appRole ?? `${name}_app`;
  const ownerRole = options.ownerRole ?? `${name}_owner`;
  const contextSecret = options.contextSecret ?? randomBytes(24).toString('base64url');
  const supportRole = options.supportRole;
  const routerRole = options.routerRole ?? `${name}_router`;
  await install(adminUrl, {
    ...options,
    appRole,
    ownerRole,
    routerRole,
    appPassword: ROLE_PASSWORD,
    ownerPassword: ROLE_PASSWORD,
    supportPassword: ROLE_PASSWORD,
    routerPassword: ROLE_PASSWORD,
    contextSecret,
  });
  const appUrl = withDatabase(rootUrl, name, appRole, process.env.TENANTRY_TEST_APP_PORT);
  return openTestDatabase(
    {
      name,
      appRole,
      ownerRole,
      contextSecret,
      adminUrl,
      ownerUrl: withDatabase(rootUrl, name, ownerRole),
      appUrl,
      directAppUrl: withDatabase(rootUrl, name, appRole),
      supportUrl: supportRole === undefined ? undefined : withDatabase(rootUrl, name, supportRole),
      routerRole,
      routerUrl: withDatabase(rootUrl, name, routerRole),
    },
    async () => {
      const c = new pg.Client({ connectionString: rootUrl });
      await c.connect();
      try {
        await dropDatabase(c, name);
        for (const role of [appRole, ownerRole, routerRole, ...(supportRole === undefined ? [] : [supportRole])]) {
          await c.query(`drop owned by ${role} cascade`).catch(() => undefined);
          await c.query(`drop role if exists ${role}`).catch(() => undefined);
        }
      } finally {
        await c.end();
      }
    },
  );
}

/**
 * The pools and the clean-up of an installed test database, from its facts: admin and owner
 * pools, `appPool()`, and `drop()`, which ends every pool, then runs `dropObjects` (the database,
 * and whatever roles the caller created for it). Used by createTestDatabase and the clusters harness.
 */
export function openTestDatabase(
  facts: Omit<TestDatabase, 'admin' | 'owner' | 'appPool' | 'drop'>,
  dropObjects: () => Promise<void>,
): TestDatabase {
  const pools: pg.Pool[] = [];
  const admin = new pg.Pool({ connectionString: facts.adminUrl, max: 4 });
  const owner = new pg.Pool({ connectionString: facts.ownerUrl, max: 4 });
  pools.push(admin, owner);
  return {
    ...facts,
    admin,
    owner,
    appPool(config = {}) {
      const pool = new TenantPool({
        connectionString: facts.appUrl,
        contextSecret: facts.contextSecret,
        max: 8,
        ...config,
      });
      pools.push(pool);
      return pool;
    },
    async drop() {
      // pg-pool's end() resolves before every socket has closed: a backend still closing can be
      // terminated by DROP DATABASE ... WITH (FORCE) in dropObjects (57P01), which is expected here.
      for (const p of pools) p.on('error', () => undefined);
      await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
      await dropObjects();
    },
  };
}
