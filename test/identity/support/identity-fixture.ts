import { randomBytes, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { TenantCatalog } from '../../../src/catalog/tenant-catalog.js';
import { TenantPool } from '../../../src/data/tenant-pool.js';
import { Sessions } from '../../../src/identity/sessions.js';
import { StaffDirectory } from '../../../src/identity/staff-directory.js';
import { TenantResolver, type TenantResolverOptions } from '../../../src/identity/tenant-resolver.js';
import { TokenVerifier } from '../../../src/identity/token-verifier.js';
import { createTestDatabase, type TestDatabase } from '../../support/test-database.js';

export const ISSUER = 'identity-test';
export const AUDIENCE = 'identity-test-api';

/** A member's row as the resolver's membership lookup returns it. */
export interface MemberRow {
  role: string;
}

/**
 * Two tenants (acme, globex) with a `members` tenant table, users alice (acme), grace (globex),
 * sam (both) and a staff member; an HS256 token signer and a verifier (jose, algorithm pinned);
 * a support role; helpers to sign in (a real session) and build resolvers.
 */
export async function createIdentityFixture() {
  const supportRole = `ts_${randomBytes(5).toString('hex')}_support`;
  const db: TestDatabase = await createTestDatabase({ supportRole });
  await db.owner.query(`
    create table public.members (
      tenant_id uuid not null default tenantry.current_tenant_id(),
      user_id uuid not null,
      role text not null default 'member',
      primary key (tenant_id, user_id));
    select tenantry.register_tenant_table('public.members');
    -- membership is control plane: pinned, so a suspended tenant's members can still be told apart
    select tenantry.pin_tenant_table('public.members');`);
  const catalog = new TenantCatalog(db.owner);
  const acme = await catalog.create({ slug: 'acme', name: 'Acme' });
  const globex = await catalog.create({ slug: 'globex', name: 'Globex' });
  const users = { alice: randomUUID(), grace: randomUUID(), sam: randomUUID(), staff: randomUUID() };
  await db.owner.query(
    `insert into public.members (tenant_id, user_id, role) values ($1, $2, 'admin'), ($3, $4, 'admin'), ($1, $5, 'member'), ($3, $5, 'member')`,
    [acme.id, users.alice, globex.id, users.grace, users.sam],
  );
  await new StaffDirectory(db.owner).add(users.staff);

  const key = randomBytes(32);
  const pool: TenantPool = db.appPool();
  const supportPool = new TenantPool({ connectionString: db.supportUrl!, contextSecret: db.contextSecret, max: 4 });
  const ownerSessions = new Sessions(db.owner);

  async function sign(claims: Record<string, unknown>, options: { expiresIn?: string } = {}): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(options.expiresIn ?? '10m')
      .sign(key);
  }
  // the library's verifier: pinned HS256, staff tokens (no tid) allowed through to the resolver
  const verifier = new TokenVerifier({
    algorithms: ['HS256'],
    secret: key,
    issuer: ISSUER,
    audience: AUDIENCE,
    tenant: 'optional',
  });

  /** A real session and a token naming it. */
  async function signIn(userId: string, tenantId: string): Promise<{ token: string; sessionId: string }> {
    const { sessionId } = await ownerSessions.start({ userId, tenantId, kind: 'user', ttlSeconds: 600 });
    return { sessionId, token: await sign({ sub: userId, tid: tenantId, sid: sessionId }) };
  }
  async function staffSignIn(userId = users.staff): Promise<{ token: string; sessionId: string }> {
    const { sessionId } = await ownerSessions.start({ userId, kind: 'staff', ttlSeconds: 600 });
    return { sessionId, token: await sign({ sub: userId, sid: sessionId, kind: 'staff' }) };
  }

  const membership: TenantResolverOptions<MemberRow>['membership'] = async ({ userId }) => {
    const { rows } = await pool.query<MemberRow>(
      'select role from public.members where tenant_id = tenantry.home_tenant_id() and user_id = $1',
      [userId],
    );
    return rows[0] ?? null;
  };
  function resolver(options: Partial<TenantResolverOptions<MemberRow>> = {}): TenantResolver<MemberRow> {
    return new TenantResolver<MemberRow>({ pool, tokens: verifier, membership, ...options });
  }

  return {
    db,
    pool,
    supportPool,
    acme,
    globex,
    catalog,
    users,
    sign,
    signIn,
    staffSignIn,
    resolver,
    async close() {
      // pg-pool's end() resolves before every socket closed: DROP DATABASE … WITH (FORCE) may still terminate one (57P01)
      supportPool.on('error', () => undefined);
      await supportPool.end();
      await db.drop();
    },
  };
}

export type IdentityFixture = Awaited<ReturnType<typeof createIdentityFixture>>;

/** Authorization header of a bearer credential. */
export function bearer(credential: string): Record<string, string> {
  return { authorization: `Bearer ${credential}` };
}
