import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { StaffAccess, type Queryable } from 'tenantry';
import type { TokenService } from '../auth/token-service.js';
import { ApiError } from '../http/api-error.js';
import { int, parseInput, text, uuid } from '../http/validation.js';
import { consoleTenant } from './console-tenant.js';

/** The reason prefix of the console's act-as grants (how the console finds its own among the session's grants). */
const PREFIX = 'console act-as: ';

const beginBody = z.object({ reason: text(), minutes: int(1, 60).default(15) }).strict();
const endBody = z.object({ grantId: uuid() }).strict();
// what the console shows of a tenant while acting as it: tenant routes it reads (GETs only)
const VIEWS = ['me', 'members', 'settings', 'recordings', 'usage', 'audit-log'] as const;
const viewQuery = z.object({ grant: uuid(), view: z.enum(VIEWS) }).strict();

interface GrantRow {
  id: string;
  tenant_id: string;
  slug: string;
  reason: string;
  started_at: Date;
  expires_at: Date;
}

/**
 * Act-as from the console: a staff member opens, with a reason, a time-limited `act_as` staff
 * grant on a tenant (1 to 60 minutes, default 15; recorded in the tenant's audit log by the
 * database), and sees the tenant as its admins do, read-only: the console asks the tenant's own
 * routes (GET only) as the staff member with `X-Tenant`, each request audited as `staff.request`
 * by the adapter. Nothing is written as the tenant from the console. The page shows a banner
 * while a grant is open; it ends with its expiry, with "Stop acting", or with the sign-out.
 */
export function consoleActAsRoutes(
  app: FastifyInstance,
  api: FastifyInstance,
  options: { catalogPool: Queryable; staffAccess: StaffAccess; tokens: TokenService },
): void {
  const { catalogPool, staffAccess, tokens } = options;

  const openGrants = async (sessionId: string, grantId?: string) => {
    const { rows } = await catalogPool.query<GrantRow>(
      `select g.id::text, g.tenant_id::text, t.slug, g.reason, g.started_at, g.expires_at
         from tenantry_private.staff_grants g join tenantry.tenants t on t.id = g.tenant_id
        where g.session_id = $1 and g.access = 'act_as' and g.ended_at is null and g.expires_at > now()
          and g.reason like 'console act-as: %' and ($2::uuid is null or g.id = $2)
        order by g.started_at desc`,
      [sessionId, grantId ?? null],
    );
    return rows.map((g) => ({
      grantId: g.id,
      tenantId: g.tenant_id,
      tenant: g.slug,
      reason: g.reason.slice(PREFIX.length),
      access: 'read-only' as const,
      startedAt: g.started_at,
      expiresAt: g.expires_at,
    }));
  };

  api.get('/console/api/act-as', async (request) => ({
    sessions: await openGrants(request.consoleStaff!.sessionId),
  }));

  api.post('/console/api/tenants/:tenant/act-as', async (request, reply) => {
    const tenant = await consoleTenant(catalogPool, request);
    const body = parseInput(beginBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (tenant.status === 'deleted') throw new ApiError(409, 'TENANT_DELETED', 'A deleted tenant is not acted as');
    const staff = request.consoleStaff!;
    if ((await openGrants(staff.sessionId)).some((g) => g.tenantId === tenant.id))
      throw new ApiError(409, 'ACT_AS_OPEN', 'You are already acting as this tenant');
    const grant = await staffAccess.begin({
      sessionId: staff.sessionId,
      tenantId: tenant.id,
      access: 'act_as',
      reason: `${PREFIX}${reason}`.slice(0, 500),
      minutes: body.minutes,
    });
    return reply.code(201).send({
      grantId: grant.grantId,
      tenantId: tenant.id,
      tenant: tenant.slug,
      access: 'read-only',
      expiresAt: grant.expiresAt,
    });
  });

  api.post('/console/api/act-as/end', async (request, reply) => {
    const { grantId } = parseInput(endBody, request.body, 'body');
    const staff = request.consoleStaff!;
    if ((await openGrants(staff.sessionId, grantId)).length === 0)
      throw new ApiError(404, 'NOT_FOUND', 'No open act-as session with this id');
    await staffAccess.end({ sessionId: staff.sessionId, grantId });
    return reply.code(204).send();
  });

  api.get('/console/api/act-as/view', { config: { query: viewQuery } }, async (request, reply) => {
    const q = parseInput(viewQuery, request.query, 'query');
    const staff = request.consoleStaff!;
    const [grant] = await openGrants(staff.sessionId, q.grant);
    if (!grant) throw new ApiError(403, 'STAFF_ACCESS_REQUIRED', 'The act-as session has ended');
    // the staff member's own bearer token for this one request, kept on the server: the browser
    // holds only the console cookie, which no tenant route accepts
    const bearer = await tokens.issueStaff({ userId: staff.userId, sessionId: staff.sessionId });
    const answer = await app.inject({
      method: 'GET',
      url: `/${q.view}${q.view === 'usage' ? usageWindow(new Date()) : ''}`,
      headers: { authorization: `Bearer ${bearer}`, 'x-tenant': grant.tenantId },
    });
    const type = String(answer.headers['content-type'] ?? '');
    if (!type.includes('json')) throw new ApiError(409, 'ACT_AS_VIEW_FAILED', 'The tenant route did not answer JSON');
    return reply.code(answer.statusCode).type('application/json; charset=utf-8').send(answer.body);
  });
}

/** The usage view's window: the last 24 hours, by the hour (the tenant route needs from and to). */
export function usageWindow(now: Date): string {
  const from = new Date(now.getTime() - 24 * 3600_000);
  const query = new URLSearchParams({ from: from.toISOString(), to: now.toISOString(), granularity: 'hour' });
  return `?${query.toString()}`;
}
