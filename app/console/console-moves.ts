import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { StaffAccess, type MoveRecord, type PlacementTarget, type Queryable } from 'tenantry';
import type { TenantRateLimits } from 'tenantry/limits';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import { consoleTenant, recordConsoleReason, tenantRef } from './console-tenant.js';

/** What the console needs to move tenants: the server's TenantTiers is one. */
export interface ConsoleMoves {
  /** Records a move (resolves as soon as it is in `tenantry.moves`, before anything runs). */
  start(tenantId: string, target: PlacementTarget): Promise<MoveRecord>;
  /** Runs a recorded move, or continues an interrupted one, to its end (prepares its target first). */
  resume(moveId: string): Promise<MoveRecord>;
  /** Undoes a move that has not switched yet. */
  rollback(moveId: string): Promise<MoveRecord>;
}

const moveParams = z.object({ tenant: tenantRef, moveId: z.uuid() }).strict();
const startBody = z
  .object({
    tier: z.enum(['shared', 'schema', 'database']),
    cluster: text().regex(/^[a-z][a-z0-9_-]{0,62}$/, 'cluster must be a cluster name'),
    reason: text(),
  })
  .strict();
const reasonBody = z.object({ reason: text() }).strict();

const OPEN = ['created', 'prepared', 'capturing', 'copied', 'freezing', 'switched'];

interface MoveRow {
  id: string;
  step: string;
  source: PlacementTarget;
  target: PlacementTarget;
  cursor: { table?: string; copied?: Record<string, number> };
  error: string | null;
  freeze_ms: number | null;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
}

/** Names of a tenant's own schema or database: derived from its slug, like the demo placements. */
function targetFor(slug: string, tier: PlacementTarget['tier'], cluster: string): PlacementTarget {
  const name = slug.replaceAll('-', '_');
  if (tier === 'schema') return { tier, cluster, schema: `t_${name}`.slice(0, 63) };
  if (tier === 'database') return { tier, cluster, database: `tenant_${name}`.slice(0, 63) };
  return { tier, cluster };
}

/**
 * Moves from the console: start one (prepare the target, then copy, catch up, freeze, switch),
 * watch it (the move's own record in `tenantry.moves`, read every second by the page), resume
 * or roll it back. Each start, resume and rollback needs a reason, written to the tenant's audit
 * log through a one-minute staff grant like the console's other actions.
 */
export function consoleMoveRoutes(
  api: FastifyInstance,
  options: {
    catalogPool: Queryable;
    moves: ConsoleMoves;
    staffAccess: StaffAccess;
    onError: (error: unknown) => void;
    /** Counts each move started against the tenant's `move` limit (429 RATE_LIMITED past it). */
    limits?: Pick<TenantRateLimits, 'consume'>;
  },
): void {
  const { catalogPool, moves, staffAccess } = options;

  const tenantOf = (request: FastifyRequest) => consoleTenant(catalogPool, request);

  const audited = (sessionId: string, tenantId: string, what: string, reason: string) =>
    recordConsoleReason(staffAccess, { sessionId, tenantId }, what, reason);

  // runs in the background: the page watches the move's record; a failure is recorded there too
  const background = (work: Promise<unknown>) => void work.catch(options.onError);

  api.get('/console/api/tenants/:tenant/moves', async (request) => {
    const tenant = await tenantOf(request);
    const { rows } = await catalogPool.query<MoveRow>(
      `select id, step, source, target, cursor, error, freeze_ms, created_at, updated_at, finished_at
         from tenantry.moves where tenant_id = $1 order by created_at desc limit 20`,
      [tenant.id],
    );
    return {
      moves: rows.map((m) => ({
        id: m.id,
        step: m.step,
        open: OPEN.includes(m.step),
        source: m.source,
        target: m.target,
        table: m.cursor.table ?? null,
        copied: m.cursor.copied ?? {},
        error: m.error,
        freezeMs: m.freeze_ms,
        createdAt: m.created_at,
        updatedAt: m.updated_at,
        finishedAt: m.finished_at,
      })),
    };
  });

  api.post('/console/api/tenants/:tenant/moves', async (request, reply) => {
    const tenant = await tenantOf(request);
    const body = parseInput(startBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (tenant.status !== 'active') throw new ApiError(409, 'TENANT_NOT_ACTIVE', 'Only an active tenant is moved');
    const { rows: open } = await catalogPool.query(
      `select 1 from tenantry.moves where tenant_id = $1 and step <> all ($2::text[]) limit 1`,
      [tenant.id, ['done', 'cleaned', 'rolled_back']],
    );
    if (open.length > 0) throw new ApiError(409, 'MOVE_IN_PROGRESS', 'This tenant has a move in progress');
    const { rows: cluster } = await catalogPool.query('select 1 from tenantry.clusters where name = $1', [
      body.cluster,
    ]);
    if (cluster.length === 0) throw new ApiError(400, 'VALIDATION_FAILED', 'No such cluster', 'cluster');
    const target = targetFor(tenant.slug, body.tier, body.cluster);
    const { rows: here } = await catalogPool.query<{ tier: string; cluster: string }>(
      `select coalesce(p.tier, 'shared') as tier, coalesce(p.cluster, 'home') as cluster
         from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id where t.id = $1`,
      [tenant.id],
    );
    if (here[0]?.tier === target.tier && here[0].cluster === target.cluster)
      throw new ApiError(409, 'ALREADY_PLACED', 'The tenant already lives there');
    // the tenant's plan's moves an hour (a move copies all its data): counted once it would start
    await options.limits?.consume(tenant.id, 'move');
    await audited(request.consoleStaff!.sessionId, tenant.id, `move to ${body.tier} on ${body.cluster}`, reason);
    // recorded before the answer: a crash after the 202 leaves an open move (resumed at the next
    // start, or from this page), never nothing
    const move = await moves.start(tenant.id, target).catch((error: unknown) => {
      // another request started a move between the checks above and this one
      const code = (error as { code?: unknown } | null)?.code;
      if (code === 'MOVE_BUSY') throw new ApiError(409, 'MOVE_IN_PROGRESS', 'This tenant has a move in progress');
      if (code === 'MOVE_SAME_PLACEMENT') throw new ApiError(409, 'ALREADY_PLACED', 'The tenant already lives there');
      throw error;
    });
    background(moves.resume(move.id));
    return reply.code(202).send({ target, moveId: move.id });
  });

  for (const action of ['resume', 'rollback'] as const) {
    api.post(`/console/api/tenants/:tenant/moves/:moveId/${action}`, async (request, reply) => {
      const { moveId } = parseInput(moveParams, request.params, 'params');
      const tenant = await tenantOf(request);
      const { reason } = parseInput(reasonBody, request.body, 'body');
      const checked = StaffAccess.checkReason(reason);
      const { rows } = await catalogPool.query<{ step: string }>(
        'select step from tenantry.moves where id = $1 and tenant_id = $2',
        [moveId, tenant.id],
      );
      if (!rows[0]) throw new ApiError(404, 'NOT_FOUND', 'No such move of this tenant');
      if (!OPEN.includes(rows[0].step) && rows[0].step !== 'rolling_back')
        throw new ApiError(409, 'MOVE_FINISHED', 'This move has finished');
      await audited(request.consoleStaff!.sessionId, tenant.id, `move ${action}`, checked);
      background(action === 'resume' ? moves.resume(moveId) : moves.rollback(moveId));
      return reply.code(202).send({ moveId, action });
    });
  }
}
