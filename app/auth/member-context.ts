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

// On Citus (members distributed, tenantry.tenants local on the coordinator): the join of the two
// crashed the coordinator's backend (Citus 13.2.2, signal 11, seen with this statement), so the
// lookup reads the membership and the tenant in two statements there
const MEMBER_ONLY_SQL = `select m.role, m.display_name, m.email from public.members m
  where m.tenant_id = tenantry.home_tenant_id() and m.user_id = $1 and m.removed_at is null`;
const TENANT_SQL = 'select id, slug, name from tenantry.tenants where id = tenantry.home_tenant_id()';

/**
 * The resolver's membership lookup: the caller's active membership of the current tenant, with
 * the tenant's name, in ONE statement (two with `separate: true`, for Citus), or null. Runs inside
 * `runAs(tenant)` on every request, so a removed member is refused at once. RLS shows only the
 * current tenant's rows anyway; the explicit tenant predicate keeps the statement clean for the
 * query guard.
 */
export function memberLookup(
  pool: Queryable,
  options: { separate?: boolean } = {},
): NonNullable<TenantResolverOptions<Member>['membership']> {
  return async ({ userId }) => {
    let row: MemberRow | undefined;
    if (options.separate) {
      const { rows } = await pool.query<Omit<MemberRow, 'id' | 'slug' | 'name'>>(MEMBER_ONLY_SQL, [userId]);
      if (!rows[0]) return null;
      const tenant = (await pool.query<Pick<MemberRow, 'id' | 'slug' | 'name'>>(TENANT_SQL)).rows[0];
      if (!tenant) return null;
      row = { ...rows[0], ...tenant };
    } else {
      row = (await pool.query<MemberRow>(MEMBER_SQL, [userId])).rows[0];
    }
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
