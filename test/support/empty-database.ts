import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { ROLE_PASSWORD } from './test-database.js';
import { dropDatabase } from './drop-database.js';

/** An empty database (Tenantry not installed) with four role names of its own. */
export interface EmptyDatabase {
  name: string;
  adminUrl: string;
  admin: pg.Pool;
  roles: { app: string; owner: string; support: string; router: string };
  url(role: string): string;
}

/** Creates an {@link EmptyDatabase}; its clean-up (the database, and the roles if created) is pushed on `cleanups`. */
export async function createEmptyDatabase(cleanups: (() => Promise<void>)[]): Promise<EmptyDatabase> {
  const rootUrl = inject('adminUrl');
  const name = `tu_${randomBytes(5).toString('hex')}`;
  const root = new pg.Client({ connectionString: rootUrl });
  await root.connect();
  await root.query(`create database ${name}`);
  await root.end();
  const u = new URL(rootUrl);
  u.pathname = `/${name}`;
  const adminUrl = u.toString();
  const admin = new pg.Pool({ connectionString: adminUrl, max: 3 });
  const roles = { app: `${name}_app`, owner: `${name}_owner`, support: `${name}_support`, router: `${name}_router` };
  cleanups.push(async () => {
    await admin.end();
    const c = new pg.Client({ connectionString: rootUrl });
    await c.connect();
    await dropDatabase(c, name);
    for (const role of Object.values(roles)) {
      await c.query(`drop owned by ${role} cascade`).catch(() => undefined);
      await c.query(`drop role if exists ${role}`).catch(() => undefined);
    }
    await c.end();
  });
  return {
    name,
    adminUrl,
    admin,
    roles,
    url(role: string) {
      const r = new URL(adminUrl);
      r.username = role;
      r.password = ROLE_PASSWORD;
      return r.toString();
    },
  };
}
