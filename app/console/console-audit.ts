import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AuditLog, runAs, sqlStateOf, type Queryable } from 'tenantry';
import { ApiError } from '../http/api-error.js';
import { bigintId, parseInput, queryInt, uuid } from '../http/validation.js';
import { consoleTenant } from './console-tenant.js';

/** How a console action ended: `started` is a 202 (a move, a purge, an export running in the background). */
export type ConsoleOutcome = 'ok' | 'started' | 'refused' | 'failed';

/** One structured entry of the console's audit (app_private.console_audit). */
export interface ConsoleAuditEntry {
  id: string;
  occurredAt: Date;
  staffId: string;
  action: string;
  tenantId: string | null;
  tenantSlug: string | null;
  reason: string | null;
  outcome: ConsoleOutcome;
  code: string | null;
  detail: Record<string, unknown>;
}

/** What is recorded; see {@link ConsoleAudit.record}. */
export interface ConsoleAuditInput {
  staffId: string;
  action: string;
  tenantId?: string | null;
  tenantSlug?: string | null;
  reason?: string | null;
  outcome: ConsoleOutcome;
  code?: string | null;
  detail?: Record<string, unknown>;
}

/**
 * The console's own audit: who (staff id), what (action), on which tenant, why (reason), how it
 * ended (outcome and error code), when. Written as the owner role into an append-only table of
 * the control plane, so it keeps what a tenant's own log cannot: refusals, failures, and the
 * actions on a tenant that was purged since.
 */
export class ConsoleAudit {
  constructor(readonly db: Queryable) {}

  async record(entry: ConsoleAuditInput): Promise<void> {
    await this.db.query(
      `insert into app_private.console_audit (staff_id, action, target_tenant_id, tenant_slug, reason, outcome, code, detail)
       values ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        entry.staffId,
        entry.action,
        entry.tenantId ?? null,
        entry.tenantSlug ? storable(entry.tenantSlug) : null,
        entry.reason ? storable(entry.reason).slice(0, 500) : null,
        entry.outcome,
        entry.code?.slice(0, 64) ?? null,
        storable(JSON.stringify(entry.detail ?? {})),
      ],
    );
  }

  /** Newest first; `before` pages by id. */
  async list(filter: {
    tenantId?: string | undefined;
    staffId?: string | undefined;
    action?: string | undefined;
    before?: string | undefined;
    limit: number;
  }): Promise<ConsoleAuditEntry[]> {
    const { rows } = await this.db.query<{
      id: string;
      occurred_at: Date;
      staff_id: string;
      action: string;
      tenant_id: string | null;
      tenant_slug: string | null;
      reason: string | null;
      outcome: ConsoleOutcome;
      code: string | null;
      detail: Record<string, unknown>;
    }>(
      `select id::text, occurred_at, staff_id::text, action, target_tenant_id::text as tenant_id, tenant_slug, reason, outcome, code, detail
         from app_private.console_audit
        where ($1::uuid is null or target_tenant_id = $1) and ($2::uuid is null or staff_id = $2)
          and ($3::text is null or action = $3) and ($4::bigint is null or id < $4)
        order by console_audit.id desc limit $5`,
      [filter.tenantId ?? null, filter.staffId ?? null, filter.action ?? null, filter.before ?? null, filter.limit],
    );
    return rows.map((r) => ({
      id: r.id,
      occurredAt: r.occurred_at,
      staffId: r.staff_id,
      action: r.action,
      tenantId: r.tenant_id,
      tenantSlug: r.tenant_slug,
      reason: r.reason,
      outcome: r.outcome,
      code: r.code,
      detail: r.detail,
    }));
  }
}

// the console's state changes, by method and route: the action each is recorded as
const TENANT_ACTIONS = new Set(['suspend', 'resume', 'soft-delete', 'restore']);

const ACTIONS: Record<string, string | ((body: Record<string, unknown>) => string)> = {
  // only a known action's name: a refused request with a made-up one is recorded as tenant.action
  'POST /console/api/tenants/:tenant/actions': (body) =>
    typeof body.action === 'string' && TENANT_ACTIONS.has(body.action) ? `tenant.${body.action}` : 'tenant.action',
  'POST /console/api/tenants/:tenant/moves': 'move.start',
  'POST /console/api/tenants/:tenant/moves/:moveId/resume': 'move.resume',
  'POST /console/api/tenants/:tenant/moves/:moveId/rollback': 'move.rollback',
  'POST /console/api/tenants/:tenant/purge': 'purge',
  'POST /console/api/tenants/:tenant/settings': (body) => (body.unset === true ? 'settings.unset' : 'settings.set'),
  'POST /console/api/tenants/:tenant/settings/rollback': 'settings.rollback',
  'POST /console/api/tenants/:tenant/flags/:flag': (body) => (body.state === 'clear' ? 'flag.clear' : 'flag.override'),
  'POST /console/api/tenants/:tenant/exports': 'export.start',
  'POST /console/api/tenants/:tenant/act-as': 'act-as.begin',
  'POST /console/api/act-as/end': 'act-as.end',
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// what of a body or the params is worth keeping with the entry (never a value: it may be a secret)
const DETAIL_KEYS = [
  'key',
  'flag',
  'state',
  'version',
  'tier',
  'cluster',
  'moveId',
  'access',
  'minutes',
  'exportId',
  'grantId',
];

declare module 'fastify' {
  interface FastifyRequest {
    /** The tenant a console change names, looked up before the handler runs (it may be purged after). */
    consoleTarget?: { id: string; slug: string } | null;
  }
}

/**
 * Records every console state change in {@link ConsoleAudit}, whatever its outcome: the tenant is
 * looked up before the handler (a purge removes it), the outcome is read off the answer (2xx ok,
 * 202 started, 4xx refused with its code, 5xx failed) and written before the answer is sent. Downloads, which are GETs, record
 * themselves. Register on the console's API scope, before its routes.
 */
export function auditConsoleChanges(
  api: FastifyInstance,
  options: { catalogPool: Queryable; audit: ConsoleAudit; onError: (error: unknown) => void },
): void {
  const actionOf = (request: FastifyRequest): string | undefined => {
    const spec = ACTIONS[`${request.method} ${request.routeOptions.url ?? ''}`];
    if (spec === undefined) return undefined;
    return typeof spec === 'string' ? spec : spec(bodyOf(request));
  };
  api.addHook('preHandler', async (request) => {
    if (!request.consoleStaff || actionOf(request) === undefined) return;
    if ((request.params as { tenant?: unknown }).tenant !== undefined) {
      request.consoleTarget = await consoleTenant(options.catalogPool, request).catch(() => null);
      return;
    }
    // the end of an act-as session names its grant: the tenant is the grant's
    const grantId = bodyOf(request).grantId;
    if (typeof grantId !== 'string' || !UUID.test(grantId)) return;
    const { rows } = await options.catalogPool.query<{ id: string; slug: string }>(
      `select t.id::text, t.slug from tenantry_private.staff_grants g join tenantry.tenants t on t.id = g.tenant_id
        where g.id = $1 and g.session_id = $2`,
      [grantId, request.consoleStaff.sessionId],
    );
    request.consoleTarget = rows[0] ?? null;
  });
  // written before the answer leaves: an action the client saw acknowledged is in the audit
  // (a crash between the two loses the answer, not the entry)
  api.addHook('onSend', async (request, reply, payload) => {
    const staff = request.consoleStaff;
    const action = actionOf(request);
    if (!staff || action === undefined) return payload;
    const status = reply.statusCode;
    let code: string | null = null;
    if (status >= 400 && typeof payload === 'string') {
      try {
        const sent = (JSON.parse(payload) as { error?: { code?: unknown } }).error?.code;
        if (typeof sent === 'string') code = sent;
      } catch {
        // not JSON: no code
      }
    }
    const body = bodyOf(request);
    const params = request.params as Record<string, unknown>;
    const detail: Record<string, unknown> = {};
    for (const key of DETAIL_KEYS) {
      const value = params[key] ?? body[key];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
        detail[key] = typeof value === 'string' ? value.slice(0, 100) : value;
    }
    const ref = typeof params.tenant === 'string' ? params.tenant.slice(0, 63) : null;
    await options.audit
      .record({
        staffId: staff.userId,
        action,
        tenantId: request.consoleTarget?.id ?? null,
        tenantSlug: request.consoleTarget?.slug ?? ref,
        reason: typeof body.reason === 'string' ? body.reason.trim() : null,
        outcome: status >= 500 ? 'failed' : status >= 400 ? 'refused' : status === 202 ? 'started' : 'ok',
        code: status >= 400 ? (code ?? `HTTP_${status}`) : null,
        detail,
      })
      .catch(options.onError);
    return payload;
  });
}

/** What a refused request sent may not be storable text (a NUL, a lone surrogate): recorded with U+FFFD instead. */
function storable(value: string): string {
  return value.replace(/\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

function bodyOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

const consoleAuditQuery = z
  .object({
    tenant: uuid().optional(),
    staff: uuid().optional(),
    action: z
      .string()
      .regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'action must be an action name')
      .optional(),
    before: bigintId().optional(),
    limit: queryInt(1, 200).default(50),
  })
  .strict();
const tenantAuditQuery = z.object({ before: bigintId().optional(), limit: queryInt(1, 200).default(50) }).strict();

/**
 * The audit routes:
 * - `GET /console/api/audit?tenant=&staff=&action=&before=&limit=`: the console's entries, newest first.
 * - `GET /console/api/tenants/:tenant/audit?before=&limit=`: the tenant's own audit log (what its
 *   admins see too), newest first, paged by entry number (`entries: null` while the data plane
 *   holds the tenant; the console's own entries about it still answer through `/audit?tenant=`).
 */
export function consoleAuditRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; appPool: Queryable; audit: ConsoleAudit },
): void {
  api.get('/console/api/audit', { config: { query: consoleAuditQuery } }, async (request) => {
    const q = parseInput(consoleAuditQuery, request.query, 'query');
    const entries = await options.audit.list({
      tenantId: q.tenant,
      staffId: q.staff,
      action: q.action,
      before: q.before,
      limit: q.limit,
    });
    return { entries, next: entries.length === q.limit ? entries.at(-1)!.id : null };
  });

  api.get('/console/api/tenants/:tenant/audit', { config: { query: tenantAuditQuery } }, async (request) => {
    const tenant = await consoleTenant(options.catalogPool, request);
    const q = parseInput(tenantAuditQuery, request.query, 'query');
    let log: Awaited<ReturnType<AuditLog['list']>> | null;
    try {
      log = await runAs(tenant.id, () =>
        new AuditLog(options.appPool).list({ limit: q.limit, ...(q.before ? { before: q.before } : {}) }),
      );
    } catch (error) {
      const state = sqlStateOf(error) ?? (error as { code?: unknown }).code;
      if (state !== 'TR005' && state !== 'TR006' && state !== 'TENANT_SUSPENDED' && state !== 'TENANT_DELETED')
        throw error;
      log = null; // the data plane holds the tenant: the console's own entries still answer
    }
    if (log === null && q.before !== undefined)
      throw new ApiError(
        409,
        'AUDIT_LOG_UNREADABLE',
        `The audit log is not readable while the tenant is ${tenant.status}`,
      );
    return {
      entries: log,
      next: log && log.length === q.limit ? log.at(-1)!.id : null,
    };
  });
}
