import type { Queryable, TenantResolverOptions } from 'tenantry';
import type { MemberRole } from '../identity/users.js';

/** The caller of a tenant route: a member, or staff acting as the tenant under a grant. */
export interface Member {
  userId: string;
  /** `staff` for a staff member acting under an open grant (may do what an admin may, audited). */
  role: MemberRole | 'staff';
  displayName: string;
  email: string;
  tenant: { id: string; slug: string; name: string };
}

interface MemberRow {
  id: string;
  slug: string;
  name: string;
  role: MemberRole;
  display_name: string;
  email: string;
}

const MEMBER_SQL = `select t.id, t.slug, t.name, m.role, m.display_name, m.email
   from public.members m join tenantry.tenants t on t.id = m.tenant_id
  where m.tenant_id = tenantry.home_tenant_id() and m.user_id = $1 and m.removed_at is null`;

/**
 * The resolver's membership lookup: the caller's active membership of the current tenant, with
 * the tenant's name, in ONE statement, or null. Runs inside `runAs(tenant)` on every request, so
 * a removed member is refused at once. RLS shows only the current tenant's rows anyway; the
 * explicit tenant predicate keeps the statement clean for the query guard.
 */
export function memberLookup(pool: Queryable): NonNullable<TenantResolverOptions<Member>['membership']> {
  return async ({ userId }) => {
    const { rows } = await pool.query<MemberRow>(MEMBER_SQL, [userId]);
    const row = rows[0];
    if (!row) return null;
    return {
      userId,
      role: row.role,
      displayName: row.display_name,
      email: row.email,
      tenant: { id: row.id, slug: row.slug, name: row.name },
    };
  };
}

/** The tenant's public facts for a staff caller (who is no member): read as the tenant. */
export async function staffCaller(pool: Queryable, staffId: string): Promise<Member> {
  const { rows } = await pool.query<{ id: string; slug: string; name: string }>(
    'select id, slug, name from tenantry.tenants where id = tenantry.home_tenant_id()',
  );
  const tenant = rows[0]!;
  // their own profile (a definer function: the app role cannot read the users table)
  const { rows: profile } = await pool.query<{ email: string; display_name: string }>(
    'select email, display_name from app.staff_profile($1)',
    [staffId],
  );
  return {
    userId: staffId,
    role: 'staff',
    displayName: profile[0]?.display_name ?? 'Staff',
    email: profile[0]?.email ?? '',
    tenant,
  };
}
