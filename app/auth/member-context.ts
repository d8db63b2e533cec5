import type { Queryable } from '../../src/index.js';
import { TenantNotFoundError, TenantSuspendedError } from '../../src/index.js';
import type { MemberRole } from '../identity/users.js';
import { ApiError } from '../http/api-error.js';
import type { TokenClaims } from './token-service.js';

/** The caller of an authenticated request, as this request's database reads found them. */
export interface Member {
  userId: string;
  role: MemberRole;
  displayName: string;
  email: string;
  tenant: { id: string; slug: string; name: string };
}

interface MemberRow {
  id: string;
  slug: string;
  name: string;
  status: string;
  role: MemberRole | null;
  display_name: string | null;
  email: string | null;
}

/**
 * Loads the caller's tenant and membership in ONE statement. Call inside `runAs(claims.tenantId)`:
 * RLS shows the app role only the current tenant's row of tenantry.tenants and its members.
 * Missing or deleted tenant → 404 TENANT_NOT_FOUND; no membership → 403 NOT_A_MEMBER (checked
 * before suspension, so a non-member learns nothing about the tenant); suspended → 403 TENANT_SUSPENDED.
 */
export async function loadMember(pool: Queryable, claims: TokenClaims): Promise<Member> {
  const { rows } = await pool.query<MemberRow>(
    `select t.id, t.slug, t.name, t.status, m.role, m.display_name, m.email
       from tenantry.tenants t
       left join public.members m on m.tenant_id = t.id and m.user_id = $1
      where t.id = $2`,
    [claims.userId, claims.tenantId],
  );
  const row = rows[0];
  if (!row || row.status === 'deleted') throw new TenantNotFoundError();
  if (row.role === null) throw new ApiError(403, 'NOT_A_MEMBER', 'You are not a member of this tenant');
  if (row.status !== 'active') throw new TenantSuspendedError();
  return {
    userId: claims.userId,
    role: row.role,
    displayName: row.display_name!,
    email: row.email!,
    tenant: { id: row.id, slug: row.slug, name: row.name },
  };
}
