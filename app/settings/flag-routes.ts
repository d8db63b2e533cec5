import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { currentTenant, type Queryable } from 'tenantry';
import type { FlagsAdmin } from 'tenantry/settings';
import { changeMetaOf } from '../auth/audit-actor.js';
import { adminOf } from '../auth/tenant-scope.js';
import type { TokenService } from '../auth/token-service.js';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import { verifyStaff } from '../staff/staff-routes.js';

const flagParams = z.object({ flag: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/, 'flag must be a flag name') });
const overrideBody = z.object({ value: z.unknown(), reason: text().max(500).optional() }).strict();
const reasonBody = z.object({ reason: text().min(1).max(500) }).strict();
const rolloutBody = z
  .object({ percent: z.number().min(0).max(100).nullable(), reason: text().min(1).max(500) })
  .strict();
const noQuery = z.object({}).strict();

/**
 * A tenant's flags (tenant scope): `GET /flags` (owners, admins, staff) lists every flag as the
 * tenant gets it; `PUT /flags/:flag` `{ value, reason? }` and `DELETE /flags/:flag` override
 * it for the tenant: **staff only** (acting under a grant), since an override can hand out what
 * a plan sells. Audited in the flag log and the tenant's audit log with the staff member.
 */
export function tenantFlagRoutes(scope: FastifyInstance, options: { flagsAdmin: FlagsAdmin }): void {
  const { flagsAdmin } = options;
  const staffOnly = (role: string) => {
    if (role !== 'staff')
      throw new ApiError(403, 'STAFF_ONLY', 'Only staff acting under a grant override a tenant’s flags');
  };

  scope.get('/flags', async (request) => {
    adminOf(request);
    return { items: await flagsAdmin.list(currentTenant()) };
  });

  scope.put('/flags/:flag', async (request) => {
    staffOnly(adminOf(request).role);
    const { flag } = parseInput(flagParams, request.params, 'params');
    const body = parseInput(overrideBody, request.body, 'body');
    await flagsAdmin.override(currentTenant(), flag, body.value, changeMetaOf(request, body.reason));
    return { items: await flagsAdmin.list(currentTenant()) };
  });

  scope.delete('/flags/:flag', async (request) => {
    staffOnly(adminOf(request).role);
    const { flag } = parseInput(flagParams, request.params, 'params');
    await flagsAdmin.clear(currentTenant(), flag, changeMetaOf(request));
    return { items: await flagsAdmin.list(currentTenant()) };
  });
}

/**
 * Deployment-wide flag state (staff token, no tenant): `POST /staff/flags/:flag/kill` and
 * `/revive` `{ reason }`, `PUT /staff/flags/:flag/rollout` `{ percent | null, reason }`, and
 * `GET /staff/flags/changes`. Each change is in the flag log with the staff member and reason.
 */
export function staffFlagRoutes(
  app: FastifyInstance,
  options: { flagsAdmin: FlagsAdmin; appPool: Queryable; tokens: TokenService },
): void {
  const { flagsAdmin, appPool, tokens } = options;
  const staffActor = async (request: Parameters<typeof verifyStaff>[0]) =>
    `staff:${(await verifyStaff(request, appPool, tokens)).userId}`;

  app.post('/staff/flags/:flag/kill', async (request) => {
    const actor = await staffActor(request);
    const { flag } = parseInput(flagParams, request.params, 'params');
    const { reason } = parseInput(reasonBody, request.body, 'body');
    await flagsAdmin.kill(flag, { actor, reason });
    return { flag, killed: true };
  });

  app.post('/staff/flags/:flag/revive', async (request) => {
    const actor = await staffActor(request);
    const { flag } = parseInput(flagParams, request.params, 'params');
    const { reason } = parseInput(reasonBody, request.body, 'body');
    await flagsAdmin.revive(flag, { actor, reason });
    return { flag, killed: false };
  });

  app.put('/staff/flags/:flag/rollout', async (request) => {
    const actor = await staffActor(request);
    const { flag } = parseInput(flagParams, request.params, 'params');
    const body = parseInput(rolloutBody, request.body, 'body');
    await flagsAdmin.setRollout(flag, body.percent, { actor, reason: body.reason });
    return { flag, rolloutPercent: body.percent };
  });

  app.get('/staff/flags/changes', { config: { query: noQuery } }, async (request) => {
    await staffActor(request);
    return { items: await flagsAdmin.changes({ limit: 200 }) };
  });
}
