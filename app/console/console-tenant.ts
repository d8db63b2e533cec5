import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TenantNotFoundError, type Queryable } from 'tenantry';
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
