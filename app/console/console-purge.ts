import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { StaffAccess, type Queryable } from 'tenantry';
import type { PurgePlan, TenantPurger } from 'tenantry/lifecycle';
import { ApiError } from '../http/api-error.js';
import { consoleTenant, tenantRef } from './console-tenant.js';
import { parseInput, text } from '../http/validation.js';

/** What the console needs to purge tenants: a TenantPurger. */
export type ConsolePurger = Pick<TenantPurger, 'plan' | 'run' | 'report'>;

const tenantParams = z.object({ tenant: tenantRef }).strict();
const purgeBody = z
  .object({
    confirm: text().max(63),
    reason: text(),
    ignoreRetention: z.boolean().default(false),
  })
  .strict();

type PurgeState =
  { state: 'running'; startedAt: Date } | { state: 'failed'; code: string; message: string } | { state: 'completed' };

/**
 * Purge from the console: the plan of a soft-deleted tenant (its steps, retention, what blocks it)
 * and the purge itself, with the slug typed again and a reason. The tenant's audit log goes with
 * the tenant, so the staff member and the reason are recorded in the purge's signed report
 * (`operator`), which outlives it. The purge runs in the background; the page asks for its state.
 */
export function consolePurgeRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; purger: ConsolePurger },
): void {
  const { catalogPool, purger } = options;
  // by tenant id: what this server's purges are doing (a restart forgets; run it again to resume)
  const states = new Map<string, PurgeState>();

  const tenantOf = (request: FastifyRequest) => consoleTenant(catalogPool, request);

  api.get('/console/api/tenants/:tenant/purge', async (request) => {
    const tenant = await tenantOf(request).catch(async (error: unknown) => {
      // purged: the catalog row is gone, the signed report stays
      const { tenant: ref } = parseInput(tenantParams, request.params, 'params');
      const done = await purger.report(ref.toLowerCase()).catch(() => undefined);
      if (!done) throw error;
      return done;
    });
    if ('report' in tenant)
      return {
        status: 'purged',
        run: { state: 'completed' },
        report: {
          purgeId: tenant.report.purgeId,
          operator: tenant.report.operator,
          finishedAt: tenant.report.finishedAt,
          steps: tenant.report.steps.length,
          signatureValid: tenant.valid,
        },
      };
    const plan: PurgePlan | null =
      tenant.status === 'deleted' ? await purger.plan(tenant.id, { ignoreRetention: false }) : null;
    return {
      status: tenant.status,
      run: states.get(tenant.id) ?? null,
      plan: plan && {
        steps: plan.steps.length,
        retention: plan.retention,
        blockers: plan.blockers,
        resumes: plan.resumes,
        audit: plan.audit,
      },
    };
  });

  api.post('/console/api/tenants/:tenant/purge', async (request, reply) => {
    const tenant = await tenantOf(request);
    const body = parseInput(purgeBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (body.confirm !== tenant.slug)
      throw new ApiError(400, 'PURGE_CONFIRMATION_REQUIRED', 'Type the tenant slug to confirm the purge', 'confirm');
    if (tenant.status !== 'deleted')
      throw new ApiError(409, 'TENANT_NOT_DELETED', 'Only a soft-deleted tenant is purged: soft-delete it first');
    if (states.get(tenant.id)?.state === 'running') throw new ApiError(409, 'PURGE_BUSY', 'This purge is running');
    // what stops it is said now, not discovered in the background
    const plan = await purger.plan(tenant.id, { ignoreRetention: body.ignoreRetention });
    if (plan.blockers.length > 0)
      throw new ApiError(409, plan.blockers[0]!.code, plan.blockers.map((b) => b.message).join('; '));
    const operator = `console staff ${request.consoleStaff!.userId}: ${reason}`.slice(0, 200);
    states.set(tenant.id, { state: 'running', startedAt: new Date() });
    void purger.run(tenant.id, { confirm: tenant.slug, operator, ignoreRetention: body.ignoreRetention }).then(
      () => states.set(tenant.id, { state: 'completed' }),
      (error: { code?: unknown }) =>
        states.set(tenant.id, {
          state: 'failed',
          code: typeof error?.code === 'string' ? error.code : 'PURGE_FAILED',
          message: 'The purge stopped; run it again to resume it',
        }),
    );
    return reply.code(202).send({ state: 'running' });
  });
}
