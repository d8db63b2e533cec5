import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AuditLog, OneTimeCodes, Sessions, type Queryable } from 'tenantry';
import { resolutionOf } from 'tenantry/fastify';
import { adminOf, memberOf } from '../auth/tenant-scope.js';
import { auditActor } from '../auth/audit-actor.js';
import { ApiError, notFound } from '../http/api-error.js';
import { parseInput, text, uuid } from '../http/validation.js';

const role = z.enum(['owner', 'admin', 'member']);
const userParams = z.object({ userId: uuid() });
const roleBody = z.object({ role }).strict();
const inviteBody = z
  .object({
    email: text()
      .trim()
      .toLowerCase()
      .min(3)
      .max(254)
      .regex(/^[^@\s]+@[^@\s]+$/, 'email must be an email address'),
    role: role.default('member'),
  })
  .strict();

const INVITATION_TTL_SECONDS = 7 * 24 * 3600;

interface MemberRow {
  user_id: string;
  role: 'owner' | 'admin' | 'member';
  display_name: string;
  email: string;
  created_at: Date;
}

// every statement names the tenant in context: RLS is the wall, the predicate keeps the guard quiet
const ACTIVE = `from public.members where tenant_id = tenantry.home_tenant_id() and removed_at is null`;

/**
 * Members, invitations and sign-out (tenant routes):
 * - `GET /members`; `PATCH /members/:userId` (role), `DELETE /members/:userId` (admins; only an
 *   owner touches owners; the last owner stays). Removal ends the member's sessions in this
 *   tenant at once.
 * - `POST /invitations` (admins; owners alone invite owners) issues a one-time code bound to the
 *   email and sends it there (the outbox); `GET /invitations` lists them (never the codes).
 * - `POST /auth/sign-out` ends the caller's session.
 * Every change is written to the tenant's audit log.
 */
export function memberRoutes(scope: FastifyInstance, { appPool }: { appPool: Queryable }): void {
  const audit = new AuditLog(appPool);
  const codes = new OneTimeCodes(appPool);
  const sessions = new Sessions(appPool);

  scope.post('/auth/sign-out', async (request, reply) => {
    const principal = resolutionOf(request).principal;
    if (principal.kind !== 'user' || principal.sessionId === undefined)
      throw new ApiError(400, 'NO_SESSION', 'This credential has no session to end');
    await sessions.end(principal.sessionId);
    return reply.code(204).send();
  });

  scope.get('/members', async (request) => {
    memberOf(request);
    const { rows } = await appPool.query<MemberRow>(
      `select user_id, role, display_name, email, created_at ${ACTIVE} order by created_at, user_id`,
    );
    return {
      items: rows.map((r) => ({
        userId: r.user_id,
        role: r.role,
        displayName: r.display_name,
        email: r.email,
        joinedAt: r.created_at,
      })),
    };
  });

  scope.patch('/members/:userId', async (request) => {
    const actor = adminOf(request);
    const { userId } = parseInput(userParams, request.params, 'params');
    const { role: next } = parseInput(roleBody, request.body, 'body');
    const current = await roleOf(appPool, userId);
    if (!current) throw notFound('Member');
    if ((current === 'owner' || next === 'owner') && actor.role !== 'owner' && actor.role !== 'staff')
      throw ownersOnly();
    if (current === 'owner' && next !== 'owner') await assertNotLastOwner(appPool);
    await appPool.query(
      `update public.members set role = $2 where tenant_id = tenantry.home_tenant_id() and user_id = $1 and removed_at is null`,
      [userId, next],
    );
    await audit.record({
      ...auditActor(request),
      action: 'member.role_changed',
      detail: { userId, from: current, to: next },
    });
    return { userId, role: next };
  });

  scope.delete('/members/:userId', async (request, reply) => {
    const actor = adminOf(request);
    const { userId } = parseInput(userParams, request.params, 'params');
    const current = await roleOf(appPool, userId);
    if (!current) throw notFound('Member');
    if (current === 'owner' && actor.role !== 'owner' && actor.role !== 'staff') throw ownersOnly();
    if (current === 'owner') await assertNotLastOwner(appPool);
    await appPool.query(
      `update public.members set removed_at = now() where tenant_id = tenantry.home_tenant_id() and user_id = $1 and removed_at is null`,
      [userId],
    );
    const ended = await sessions.endMemberSessions(userId);
    await audit.record({
      ...auditActor(request),
      action: 'member.removed',
      detail: { userId, role: current, sessionsEnded: ended },
    });
    return reply.code(204).send();
  });

  scope.post('/invitations', async (request, reply) => {
    const actor = adminOf(request);
    const { email, role: invitedRole } = parseInput(inviteBody, request.body, 'body');
    if (invitedRole === 'owner' && actor.role !== 'owner') throw ownersOnly();
    const who = auditActor(request);
    const { code, expiresAt } = await codes.issue({
      purpose: 'invite',
      payload: { email, role: invitedRole },
      ttlSeconds: INVITATION_TTL_SECONDS,
      createdBy: who.actorId,
    });
    // the code goes to the address (app_private.outbox, for the mailer) in its own statement: a
    // failure here leaves an issued, undelivered code that expires, never a delivered stray one
    await appPool.query('select app.send_invitation($1)', [code]);
    await audit.record({ ...who, action: 'member.invited', detail: { email, role: invitedRole } });
    // the reference server also answers the code, so the API can be tried without a mailer: it
    // opens nothing by itself (an existing identity still signs in, a new one confirms its address)
    return reply.code(201).send({ code, email, role: invitedRole, expiresAt });
  });

  scope.get('/invitations', async (request) => {
    adminOf(request);
    const items = await codes.list('invite');
    return {
      items: items.map((c) => ({
        email: c.payload.email,
        role: c.payload.role,
        invitedBy: c.createdBy,
        createdAt: c.createdAt,
        expiresAt: c.expiresAt,
        acceptedAt: c.consumedAt,
      })),
    };
  });
}

async function roleOf(pool: Queryable, userId: string): Promise<MemberRow['role'] | undefined> {
  const { rows } = await pool.query<{ role: MemberRow['role'] }>(`select role ${ACTIVE} and user_id = $1`, [userId]);
  return rows[0]?.role;
}

async function assertNotLastOwner(pool: Queryable): Promise<void> {
  const { rows } = await pool.query<{ owners: number }>(`select count(*)::int as owners ${ACTIVE} and role = 'owner'`);
  if (rows[0]!.owners <= 1) throw new ApiError(409, 'LAST_OWNER', 'A tenant keeps at least one owner');
}

function ownersOnly(): ApiError {
  return new ApiError(403, 'FORBIDDEN', 'Only an owner can grant, change or remove the owner role');
}
