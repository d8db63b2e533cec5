import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantCatalog, tryCurrentTenant } from '../../src/index.js';
import { createTenant, createTenantFactory } from '../../src/testing/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.owner.query(
    `create table people (id uuid primary key default gen_random_uuid(), tenant_id uuid not null, email text not null)`,
  );
});
afterAll(() => db?.drop());

describe('createTenantFactory', () => {
  it('creates active tenants with unique slugs and a user made by the hook, inside the tenant', async () => {
    const seen: Array<string | undefined> = [];
    const factory = createTenantFactory({
      catalog: new TenantCatalog(db.owner),
      slugPrefix: 'shop',
      createUser: async (tenant, index) => {
        seen.push(tryCurrentTenant());
        const { rows } = await db.owner.query<{ id: string }>(
          'insert into people (tenant_id, email) values ($1, $2) returning id',
          [tenant.id, `user${index}@${tenant.slug}.test`],
        );
        return { id: rows[0]!.id, email: `user${index}@${tenant.slug}.test` };
      },
    });
    const [a, b] = await factory.pair();
    const c = await factory.create({ name: 'Named', settings: { plan: 'pro' } });
    expect(new Set([a.tenant.slug, b.tenant.slug, c.tenant.slug]).size).toBe(3);
    expect(a.tenant.slug).toMatch(/^shop-[0-9a-f]{8}-0$/);
    expect(c.tenant).toMatchObject({ name: 'Named', settings: { plan: 'pro' }, status: 'active' });
    expect(seen).toEqual([a.tenant.id, b.tenant.id, c.tenant.id]);
    expect(a.user.email).toBe(`user0@${a.tenant.slug}.test`);
    expect(a.runAs(() => tryCurrentTenant())).toBe(a.tenant.id);
    expect(factory.created.map((f) => f.tenant.id)).toEqual([a.tenant.id, b.tenant.id, c.tenant.id]);
    await factory.cleanup();
  });

  it('two factories on one database never collide', async () => {
    const one = createTenantFactory({ catalog: db.owner });
    const two = createTenantFactory({ catalog: db.owner });
    const made = await Promise.all([one.create(), two.create(), one.create(), two.create()]);
    expect(new Set(made.map((f) => f.tenant.slug)).size).toBe(4);
    await Promise.all([one.cleanup(), two.cleanup()]);
  });

  it('cleanup removes the users (newest first) and soft-deletes the tenants', async () => {
    const removed: string[] = [];
    const factory = createTenantFactory({
      catalog: db.owner,
      createUser: (tenant) => `user of ${tenant.slug}`,
      removeUser: (user) => {
        removed.push(user);
      },
    });
    const [a, b] = await factory.pair();
    await factory.cleanup();
    expect(removed).toEqual([`user of ${b.tenant.slug}`, `user of ${a.tenant.slug}`]);
    const catalog = new TenantCatalog(db.owner);
    expect((await catalog.get(a.tenant.id)).status).toBe('deleted');
    expect((await catalog.get(b.tenant.id)).status).toBe('deleted');
    expect(factory.created).toEqual([]);
    await factory.cleanup(); // nothing left: a second call does nothing
    expect(removed).toHaveLength(2);
  });

  it('createTenant makes one tenant and its user without a factory', async () => {
    const one = await createTenant({ catalog: db.owner, name: 'Solo', createUser: (tenant) => ({ of: tenant.id }) });
    expect(one.tenant).toMatchObject({ name: 'Solo', status: 'active' });
    expect(one.tenant.slug).toMatch(/^test-[0-9a-f]{8}-0$/);
    expect(one.user).toEqual({ of: one.tenant.id });
    await new TenantCatalog(db.owner).softDelete(one.tenant.id);
  });
});
