// The reference server under tenantry/testing: every attack the kit generates, on the two tenant
// tables the server writes (recordings, members) and on its recording and member routes, from
// tenant B and with no tenant, each asserting refusal and that nothing of anyone else changed.
// Hand-written cross-tenant cases live in isolation.test.ts.
import { afterAll } from 'vitest';
import { randomBytes } from 'node:crypto';
import {
  createTenantFactory,
  describeTenantIsolation,
  fastifyDriver,
  type TenantFactory,
} from '../../src/testing/index.js';
import { addMember, createUser } from '../../app/identity/users.js';
import { createAppFixture, PASSWORD, type AppFixture, type FixtureUser } from './support/app-fixture.js';

let f: AppFixture | undefined;
let tenants: TenantFactory<FixtureUser> | undefined;

afterAll(async () => {
  await tenants?.cleanup();
  await f?.close();
});

/** A person with a unique email, made as the owner role (identities are not the app role's to write). */
async function person(fixture: AppFixture, label: string): Promise<FixtureUser> {
  const email = `${label}-${randomBytes(4).toString('hex')}@example.test`;
  return { id: await createUser(fixture.db.owner, { email, password: PASSWORD, displayName: label }), email };
}

describeTenantIsolation<FixtureUser>({
  name: 'reference server: tenant isolation (tenantry/testing)',
  context: async () => {
    const fixture = (f = await createAppFixture());
    tenants = createTenantFactory({
      catalog: fixture.catalog,
      slugPrefix: 'kit',
      createUser: async (tenant) => {
        const owner = await person(fixture, 'owner');
        await addMember(fixture.db.owner, tenant.id, owner.id, 'owner');
        return owner;
      },
    });
    const [a, b] = await tenants.pair();
    return {
      // the app role without the query guard: the kit's statements must reach PostgreSQL
      pool: fixture.appPool,
      privileged: fixture.db.admin,
      tenantA: a,
      tenantB: b,
      http: {
        driver: fastifyDriver(fixture.app),
        credentials: async ({ tenant, user }) => ({ authorization: `Bearer ${await fixture.token(user!, tenant.id)}` }),
      },
    };
  },
  tables: [
    {
      table: 'recordings',
      columns: ({ user }, i) => ({
        owner_id: user!.id,
        title: `kit recording ${i}`,
        duration_seconds: 10,
        mime_type: 'audio/ogg',
      }),
      update: { column: 'title', value: 'changed by an intruder' },
    },
    {
      table: 'members',
      idColumns: ['user_id'],
      seed: async ({ party }) => {
        const user = await person(f!, 'member');
        await addMember(f!.db.owner, party.tenant.id, user.id, 'member');
        return { user_id: user.id };
      },
      update: { column: 'role', value: 'owner' },
    },
  ],
  routes: [
    { method: 'GET', path: '/recordings/:id', table: 'recordings' },
    { method: 'PATCH', path: '/recordings/:id', table: 'recordings', body: { title: 'changed by an intruder' } },
    { method: 'DELETE', path: '/recordings/:id', table: 'recordings' },
    { method: 'GET', path: '/recordings?limit=100' },
    {
      method: 'POST',
      path: '/recordings',
      body: { title: 'mine', durationSeconds: 1, mimeType: 'audio/ogg' },
      crossTenant: 201,
      control: 201,
    },
    { method: 'GET', path: '/members' },
    { method: 'PATCH', path: '/members/:userId', table: 'members', body: { role: 'admin' } },
    { method: 'DELETE', path: '/members/:userId', table: 'members' },
  ],
});
