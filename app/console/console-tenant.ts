import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TenantNotFoundError, type Queryable, type StaffAccess } from 'tenantry';
import { parseInput, text } from '../http/validation.js';

/** A tenant named in a console path: its id or its slug. */
export const tenantRef = text().regex(
  /^(?:[0-9a-fA-F-]{36}|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/,
  'tenant must be a tenant id or slug',
);

const tenantParam = z.object({ tenant: tenantRef });

/** The `:tenant` of a console route as it is in the catalog (any status), or 404 TENANT_NOT_FOUND. */
export async function consoleTenant(
  catalogPool: Queryable,
  request: FastifyRequest,
): Promise<{ id: string; slug: string; status: string }> {
  const { tenant } = parseInput(tenantParam, { tenant: (request.params as { tenant?: unknown }).tenant }, 'params');
  const { rows } = await catalogPool.query<{ id: string; slug: string; status: string }>(
    'select id, slug, status from tenantry.tenants where slug = $1 or id::text = $1',
    [tenant.toLowerCase()],
  );
  if (!rows[0]) throw new TenantNotFoundError();
  return rows[0];
}

/**
 * Writes a console action and its reason to the tenant's audit log: a one-minute staff grant
 * carrying `console <what>: <reason>`, opened and closed at once (the database records both).
 */
export async function recordConsoleReason(
  staffAccess: StaffAccess,
  where: { sessionId: string; tenantId: string },
  what: string,
  reason: string,
): Promise<void> {
  const grant = await staffAccess.begin({
    ...where,
    access: 'act_as',
    reason: `console ${what}: ${reason}`.slice(0, 500),
    minutes: 1,
  });
  await staffAccess.end({ sessionId: where.sessionId, grantId: grant.grantId });
}
