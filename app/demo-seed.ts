import pg from 'pg';
import { StaffDirectory, TenantCatalog } from 'tenantry';
import { addMember, createUser, type MemberRole } from './identity/users.js';
import { DEFAULT_PLAN } from './plans.js';

/** Password of every demo user. A demo: never use in production. */
export const DEMO_PASSWORD = 'tenantry-demo';

/** The demo tenants, each on the default plan, named (the console shows it; limits read it). */
export const DEMO_TENANTS = [
  { slug: 'acme', name: 'Acme Inc.', settings: { plan: DEFAULT_PLAN } },
  { slug: 'globex', name: 'Globex Corporation', settings: { plan: DEFAULT_PLAN } },
  { slug: 'initech', name: 'Initech', settings: { plan: DEFAULT_PLAN } },
] as const;

/** Demo users; Sam is a member of every tenant (one identity, three memberships, three tiers). */
export const DEMO_USERS: ReadonlyArray<{
  email: string;
  displayName: string;
  memberships: ReadonlyArray<readonly [string, MemberRole]>;
}> = [
  { email: 'alice@acme.example', displayName: 'Alice Archer', memberships: [['acme', 'owner']] },
  { email: 'bob@acme.example', displayName: 'Bob Baker', memberships: [['acme', 'member']] },
  { email: 'grace@globex.example', displayName: 'Grace Gold', memberships: [['globex', 'owner']] },
  { email: 'ian@initech.example', displayName: 'Ian Irving', memberships: [['initech', 'owner']] },
  {
    email: 'sam@consultant.example',
    displayName: 'Sam Sterling',
    memberships: [
      ['acme', 'admin'],
      ['globex', 'member'],
      ['initech', 'member'],
    ],
  },
];

const DEMO_RECORDINGS: ReadonlyArray<{
  tenant: string;
  owner: string;
  title: string;
  durationSeconds: number;
  mimeType: string;
}> = [
  {
    tenant: 'acme',
    owner: 'alice@acme.example',
    title: 'Quarterly kickoff',
    durationSeconds: 1840,
    mimeType: 'audio/mpeg',
  },
  {
    tenant: 'acme',
    owner: 'bob@acme.example',
    title: 'Customer interview: Initech',
    durationSeconds: 2710,
    mimeType: 'audio/ogg',
  },
  {
    tenant: 'acme',
    owner: 'sam@consultant.example',
    title: 'Anvil supply chain review',
    durationSeconds: 960,
    mimeType: 'audio/wav',
  },
  {
    tenant: 'globex',
    owner: 'grace@globex.example',
    title: 'Board call (confidential)',
    durationSeconds: 3300,
    mimeType: 'audio/mpeg',
  },
  {
    tenant: 'globex',
    owner: 'sam@consultant.example',
    title: 'Hammock district site visit',
    durationSeconds: 1420,
    mimeType: 'audio/mp4',
  },
  {
    tenant: 'initech',
    owner: 'ian@initech.example',
    title: 'TPS report cover sheets',
    durationSeconds: 610,
    mimeType: 'audio/ogg',
  },
  {
    tenant: 'initech',
    owner: 'sam@consultant.example',
    title: 'Printer incident review',
    durationSeconds: 845,
    mimeType: 'audio/mpeg',
  },
];

/**
 * Seeds the demo tenants, users, memberships and recordings ONCE, atomically, as the owner
 * role. Does nothing (returns false) when a demo tenant already exists, so restarts keep data.
 */
export async function seedDemo(ownerPool: pg.Pool): Promise<boolean> {
  const client = await ownerPool.connect();
  try {
    await client.query('begin');
    await client.query(`select pg_advisory_xact_lock(hashtext('tenantry.reference-server.seed'))`);
    const catalog = new TenantCatalog(client);
    for (const t of DEMO_TENANTS) {
      if (await catalog.find(t.slug)) {
        await client.query('rollback');
        return false;
      }
    }
    const tenantIds = new Map<string, string>();
    for (const t of DEMO_TENANTS) tenantIds.set(t.slug, (await catalog.create(t)).id);
    const userIds = new Map<string, string>();
    for (const u of DEMO_USERS) {
      const id = await createUser(client, { email: u.email, password: DEMO_PASSWORD, displayName: u.displayName });
      userIds.set(u.email, id);
      for (const [slug, role] of u.memberships) await addMember(client, tenantIds.get(slug)!, id, role);
    }
    for (const r of DEMO_RECORDINGS) {
      // the owner role bypasses RLS, so it names the tenant itself
      await client.query(
        `insert into recordings (tenant_id, owner_id, title, duration_seconds, mime_type, created_at, updated_at)
         values ($1, $2, $3, $4, $5, clock_timestamp(), clock_timestamp())`,
        [tenantIds.get(r.tenant), userIds.get(r.owner), r.title, r.durationSeconds, r.mimeType],
      );
    }
    await client.query('commit');
    return true;
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** The demo staff member: belongs to no tenant; acts as one only through an audited grant. */
export const DEMO_STAFF = { email: 'staff@tenantry.example', displayName: 'Sasha Support' } as const;

/** Seeds the demo staff member once (also into databases seeded before staff existed). */
export async function seedDemoStaff(ownerPool: pg.Pool): Promise<void> {
  const { rows } = await ownerPool.query<{ id: string }>('select id from app_private.users where email = $1', [
    DEMO_STAFF.email,
  ]);
  const id =
    rows[0]?.id ??
    (await createUser(ownerPool, {
      email: DEMO_STAFF.email,
      password: DEMO_PASSWORD,
      displayName: DEMO_STAFF.displayName,
    }));
  await new StaffDirectory(ownerPool).add(id);
}

/** Which demo tenant has which sample plugin (app/plugins): one each, by an operator's override. */
export const DEMO_PLUGINS: ReadonlyArray<readonly [slug: string, plugin: string]> = [
  ['acme', 'transcripts'],
  ['globex', 'webhooks'],
];

/**
 * Enables each sample plugin for its demo tenant (audited as `demo-seed`). Run after a first
 * seed only: an operator's later change is never undone by a restart.
 */
export async function seedDemoPlugins(
  ownerPool: pg.Pool,
  admin: { enable(tenantId: string, plugin: string, meta: { actor: string; reason?: string }): Promise<void> },
): Promise<void> {
  const catalog = new TenantCatalog(ownerPool);
  for (const [slug, plugin] of DEMO_PLUGINS) {
    const tenant = await catalog.find(slug);
    if (tenant)
      await admin.enable(tenant.id, plugin, { actor: 'demo-seed', reason: 'the demo: one sample plugin each' });
  }
}
