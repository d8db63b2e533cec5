import type { Queryable } from 'tenantry';

/** Roles a member can hold in a tenant. */
export type MemberRole = 'owner' | 'admin' | 'member';

/** Input of {@link createUser}. */
export interface NewUser {
  email: string;
  password: string;
  displayName: string;
}

/**
 * Creates a global identity (app_private.users) with a bcrypt password hash made by
 * PostgreSQL's pgcrypto. Control-plane code: run it on a pool connected as the OWNER role.
 */
export async function createUser(owner: Queryable, user: NewUser): Promise<string> {
  const { rows } = await owner.query<{ id: string }>(
    `insert into app_private.users (email, password_hash, display_name)
     values (lower(btrim($1)), public.crypt($2, public.gen_salt('bf', 8)), $3)
     returning id`,
    [user.email, user.password, user.displayName],
  );
  return rows[0]!.id;
}

/** Makes `userId` a member of `tenantId`, copying the identity's name and email. Run as the OWNER role. */
export async function addMember(
  owner: Queryable,
  tenantId: string,
  userId: string,
  role: MemberRole = 'member',
): Promise<void> {
  const { rowCount } = await owner.query(
    `insert into public.members (tenant_id, user_id, role, display_name, email)
     select $1, u.id, $3, u.display_name, u.email from app_private.users u where u.id = $2`,
    [tenantId, userId, role],
  );
  if (rowCount !== 1) throw new Error('No such user');
}
