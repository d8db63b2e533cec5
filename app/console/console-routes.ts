import cookie from '@fastify/cookie';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  AuditLog,
  runAs,
  Sessions,
  sqlStateOf,
  StaffAccess,
  TenantCatalog,
  TenantNotFoundError,
  type HoldPlacements,
  type Queryable,
} from 'tenantry';
import type { TokenService } from '../auth/token-service.js';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import type { SignInThrottle, TenantRateLimits } from 'tenantry/limits';
import { signInBody, staffSignIn, tenantIdOf } from '../staff/staff-routes.js';
import { consoleAssets } from './console-assets.js';
import { checkQueryEncoding } from './console-input.js';
import { recordConsoleReason, tenantRef } from './console-tenant.js';
import { consoleMoveRoutes, type ConsoleMoves } from './console-moves.js';
import { consolePeopleRoutes } from './console-people.js';
import { consolePurgeRoutes, type ConsolePurger } from './console-purge.js';
import { auditConsoleChanges, ConsoleAudit, consoleAuditRoutes } from './console-audit.js';
import { consoleSettingsRoutes, type ConsoleSettings } from './console-settings.js';
import { consoleExportRoutes, type ConsoleExports } from './console-export.js';
import { consoleActAsRoutes } from './console-act-as.js';
import { consoleBrandingRoutes } from './console-branding.js';
import { consoleObserveRoutes, type ConsoleObserveOptions } from './console-observe.js';
import { clearSessionCookie, consoleStaff, csrfToken, setSessionCookie, type ConsoleStaff } from './console-session.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The staff member of a console API request. */
    consoleStaff: ConsoleStaff | null;
  }
}

/** What the console reads and changes: the control plane, as the owner role. */
export interface ConsoleOptions {
  /** The home database as the OWNER role: the catalog of tenants, placements and clusters. */
  catalogPool: Queryable;
  /** Owner connections to placement databases, so a transition writes the tenant's hold where it lives. */
  placements?: HoldPlacements;
  /** Moves started, watched, resumed and rolled back from the console (the server's TenantTiers); none without it. */
  moves?: ConsoleMoves;
  /** Purges of soft-deleted tenants from the console (a TenantPurger); none without it. */
  purger?: ConsolePurger;
  /** Settings and flags of a tenant, through the server's SettingsAdmin and FlagsAdmin; none without it. */
  settings?: ConsoleSettings;
  /** Tenant exports from the console (the library's exportTenant); none without it. */
  exports?: ConsoleExports;
  /** Told what failed in the background (a move); default: nothing. */
  onError?: (error: unknown) => void;
  /** The tenant's `move` rate limit (its plan's moves an hour), counted for each move started. */
  limits?: Pick<TenantRateLimits, 'consume'>;
  /** Usage, top tenants, cluster load and the doctor (console-observe.ts). */
  observe?: ConsoleObserveOptions;
}

const listQuery = z
  .object({
    q: text().max(100).optional(),
    status: z.enum(['active', 'suspended', 'deleted', 'provisioning']).optional(),
    tier: z.enum(['shared', 'schema', 'database']).optional(),
    plan: text().max(64).optional(),
    cluster: text().max(63).optional(),
    sort: z.enum(['slug', 'created', 'status', 'tier', 'requests', 'dbTime']).default('slug'),
  })
  .strict();
const tenantParams = z.object({ tenant: tenantRef }).strict();
const actionBody = z
  .object({
    action: z.enum(['suspend', 'resume', 'soft-delete', 'restore']),
    reason: text(),
    // typed confirmation of destructive actions: the tenant's slug
    confirm: text().max(63).optional(),
  })
  .strict();

interface TenantListRow {
  id: string;
  slug: string;
  name: string;
  status: string;
  plan: string | null;
  tier: string;
  cluster: string;
  created_at: Date;
  requests_24h: string;
  db_time_us_24h: string;
}

/**
 * The operator console (docs/console.md): a staff-only web app at `/console` and its JSON API at
 * `/console/api`. Staff sign in with their staff account; the session lives in an HttpOnly
 * SameSite=Strict cookie scoped to /console; every state change needs the session's CSRF token
 * and a reason, and is written to the tenant's audit log (a one-minute staff grant carrying the
 * reason, opened and closed around the change). A tenant's own users never get a staff session.
 */
export function consoleRoutes(
  app: FastifyInstance,
  options: ConsoleOptions & { appPool: Queryable; tokens: TokenService; secret: string; throttle?: SignInThrottle },
): void {
  const { appPool, tokens, catalogPool } = options;
  const catalog = new TenantCatalog(catalogPool, options.placements ? { placements: options.placements } : {});
  const staffAccess = new StaffAccess({ appPool });
  const sessions = new Sessions(appPool);
  const assets = consoleAssets();

  app.register(async (scope) => {
    await scope.register(cookie);
    scope.decorateRequest('consoleStaff', null);
    // the console runs only its own script and styles, is never framed, and says so
    scope.addHook('onSend', async (_request, reply) => {
      reply.header(
        'content-security-policy',
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
      );
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    });

    scope.get('/console', async (_request, reply) => reply.type('text/html; charset=utf-8').send(assets.html()));
    scope.get('/console/*', async (request, reply) => {
      if (request.url.startsWith('/console/api/')) throw new ApiError(404, 'NOT_FOUND', 'No such console route');
      return reply.type('text/html; charset=utf-8').send(assets.html());
    });
    scope.get('/console/assets/console.js', async (_request, reply) =>
      reply
        .type('text/javascript; charset=utf-8')
        .header('cache-control', 'no-cache')
        .send(await assets.script()),
    );

    scope.post('/console/api/sign-in', async (request, reply) => {
      const { email, password } = parseInput(signInBody, request.body, 'body');
      // the staff sign-in's throttle: the console is another door to the same accounts
      const signedIn = await staffSignIn(appPool, tokens, email, password, {
        throttle: options.throttle,
        request,
        use: 'console',
      });
      setSessionCookie(request, reply, signedIn.token, tokens.ttlSeconds);
      return { userId: signedIn.userId, csrfToken: csrfToken(options.secret, signedIn.sessionId) };
    });

    scope.register(async (api) => {
      api.addHook('onRequest', async (request) => {
        if (request.url.startsWith('/console/api/sign-in')) return;
        request.consoleStaff = await consoleStaff(request, { appPool, tokens, secret: options.secret });
        checkQueryEncoding(request.url);
      });
      const audit = new ConsoleAudit(catalogPool);
      const onError = options.onError ?? (() => undefined);
      auditConsoleChanges(api, { catalogPool, audit, onError });
      consoleAuditRoutes(api, { catalogPool, appPool, audit });
      consolePeopleRoutes(api, { catalogPool, appPool });
      consoleActAsRoutes(app, api, { catalogPool, staffAccess, tokens });
      if (options.settings) consoleSettingsRoutes(api, { catalogPool, settings: options.settings, staffAccess });
      if (options.exports)
        consoleExportRoutes(api, {
          catalogPool,
          exports: options.exports,
          staffAccess,
          audit,
          secret: options.secret,
          onError,
        });

      api.get('/console/api/session', async (request) => ({
        userId: request.consoleStaff!.userId,
        csrfToken: csrfToken(options.secret, request.consoleStaff!.sessionId),
      }));

      api.post('/console/api/sign-out', async (request, reply) => {
        await sessions.end(request.consoleStaff!.sessionId);
        clearSessionCookie(request, reply);
        return reply.code(204).send();
      });

      api.get('/console/api/tenants', { config: { query: listQuery } }, async (request) => {
        const query = parseInput(listQuery, request.query, 'query');
        const { rows } = await catalogPool.query<TenantListRow>(
          `with u as (${USAGE_24H_SQL})
           select t.id, t.slug, t.name, t.status, t.settings->>'plan' as plan,
                  coalesce(p.tier, 'shared') as tier, coalesce(p.cluster, 'home') as cluster, t.created_at,
                  coalesce(u.requests, 0)::text as requests_24h, coalesce(u.db_time_us, 0)::text as db_time_us_24h
             from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id left join u on u.tenant_id = t.id
            where ($1::text is null or t.slug ilike '%' || $1 || '%' or t.name ilike '%' || $1 || '%' or t.id::text = $1)
              and ($2::text is null or t.status = $2)
              and ($3::text is null or coalesce(p.tier, 'shared') = $3)
              and ($4::text is null or t.settings->>'plan' = $4)
              and ($5::text is null or coalesce(p.cluster, 'home') = $5)
            order by case when $6 = 'created' then t.created_at end desc,
                     case when $6 = 'status' then t.status end,
                     case when $6 = 'tier' then coalesce(p.tier, 'shared') end,
                     case when $6 = 'requests' then coalesce(u.requests, 0) end desc,
                     case when $6 = 'dbTime' then coalesce(u.db_time_us, 0) end desc,
                     t.slug
            limit 500`,
          [
            escapeLike(query.q),
            query.status ?? null,
            query.tier ?? null,
            query.plan ?? null,
            query.cluster ?? null,
            query.sort,
          ],
        );
        return { tenants: rows.map(listItem) };
      });

      api.get('/console/api/tenants/:tenant', async (request) => {
        const { tenant } = parseInput(tenantParams, request.params, 'params');
        const id = await tenantIdOf(catalogPool, tenant).catch(() => undefined);
        const found = id ? await catalog.find(id) : undefined;
        if (!found) throw new TenantNotFoundError();
        const { rows: placement } = await catalogPool.query<{
          tier: string;
          cluster: string;
          database: string | null;
          schema: string | null;
          epoch: string;
          updated_at: Date;
        }>(
          'select tier, cluster, database, schema, epoch::text, updated_at from tenantry.placements where tenant_id = $1',
          [found.id],
        );
        return {
          tenant: {
            id: found.id,
            slug: found.slug,
            name: found.name,
            status: found.status,
            plan: (found.settings as { plan?: unknown }).plan ?? null,
            createdAt: found.createdAt,
            updatedAt: found.updatedAt,
            suspendedAt: found.suspendedAt,
            deletedAt: found.deletedAt,
          },
          placement: placement[0]
            ? { ...placement[0], updatedAt: placement[0].updated_at, updated_at: undefined }
            : { tier: 'shared', cluster: 'home', database: null, schema: null, epoch: '0', updatedAt: null },
          audit: await auditOf(appPool, found.id),
          features: {
            moves: options.moves !== undefined,
            purge: options.purger !== undefined,
            settings: options.settings !== undefined,
            exports: options.exports !== undefined,
          },
        };
      });

      api.post('/console/api/tenants/:tenant/actions', async (request) => {
        const { tenant } = parseInput(tenantParams, request.params, 'params');
        const body = parseInput(actionBody, request.body, 'body');
        const reason = StaffAccess.checkReason(body.reason);
        const id = await tenantIdOf(catalogPool, tenant).catch(() => undefined);
        const found = id ? await catalog.find(id) : undefined;
        if (!found) throw new TenantNotFoundError();
        if (body.action === 'soft-delete' && body.confirm !== found.slug)
          throw new ApiError(400, 'CONFIRMATION_REQUIRED', 'Type the tenant slug to confirm', 'confirm');
        const staff = request.consoleStaff!;
        // the tenant's audit log records who and why: a one-minute grant carrying the reason
        // (the database writes its opening and closing). Deleted tenants take no grant: their
        // restore is recorded once it is active again.
        const grant =
          found.status === 'deleted'
            ? undefined
            : await staffAccess.begin({
                sessionId: staff.sessionId,
                tenantId: found.id,
                access: 'act_as',
                reason: `console ${body.action}: ${reason}`.slice(0, 500),
                minutes: 1,
              });
        try {
          const next =
            body.action === 'suspend'
              ? await catalog.suspend(found.id)
              : body.action === 'resume'
                ? await catalog.resume(found.id)
                : body.action === 'soft-delete'
                  ? await catalog.softDelete(found.id)
                  : await catalog.restore(found.id);
          if (body.action === 'restore')
            await recordConsoleReason(
              staffAccess,
              { sessionId: staff.sessionId, tenantId: found.id },
              'restore',
              reason,
            );
          return { tenant: { id: next.id, slug: next.slug, status: next.status } };
        } finally {
          if (grant) await staffAccess.end({ sessionId: staff.sessionId, grantId: grant.grantId });
        }
      });

      if (options.moves)
        consoleMoveRoutes(api, {
          catalogPool,
          moves: options.moves,
          staffAccess,
          onError: options.onError ?? (() => undefined),
          ...(options.limits ? { limits: options.limits } : {}),
        });

      if (options.purger) consolePurgeRoutes(api, { catalogPool, purger: options.purger });
      consoleBrandingRoutes(api, { catalogPool });

      consoleObserveRoutes(api, { ...options.observe, catalogPool, onError: options.onError ?? (() => undefined) });

      api.get('/console/api/clusters', async () => {
        const { rows } = await catalogPool.query<{ name: string; status: string; capacity: number; tenants: number }>(
          `select c.name, c.status, c.capacity,
                  (select count(*)::int from tenantry.tenants t left join tenantry.placements p on p.tenant_id = t.id
                    where coalesce(p.cluster, 'home') = c.name and t.status <> 'deleted') as tenants
             from tenantry.clusters c order by c.name`,
        );
        return { clusters: rows };
      });
    });
  });
}

/** Each tenant's requests and DB time (µs) metered in the last 24 hours (tenantry/metering's ledger), for the list's usage sort. */
const USAGE_24H_SQL = `select tenant_id, sum(quantity) filter (where meter = 'requests') as requests,
         sum(quantity) filter (where meter = 'db_time_us') as db_time_us
    from tenantry.usage_events where occurred_at >= now() - interval '24 hours' and meter in ('requests', 'db_time_us')
   group by tenant_id`;

function escapeLike(q: string | undefined): string | null {
  if (q === undefined || q.trim() === '') return null;
  return q.trim().replace(/[\\%_]/g, (c) => `\\${c}`);
}

function listItem(row: TenantListRow) {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    plan: row.plan,
    tier: row.tier,
    cluster: row.cluster,
    createdAt: row.created_at,
    requests24h: Number(row.requests_24h),
    dbTimeMs24h: Math.round(Number(row.db_time_us_24h) / 100) / 10,
  };
}

/** The newest entries of the tenant's audit log, or null when the data plane holds the tenant (suspended, deleted). */
async function auditOf(appPool: Queryable, tenantId: string) {
  try {
    return await runAs(tenantId, () => new AuditLog(appPool).list({ limit: 50 }));
  } catch (error) {
    const state = sqlStateOf(error) ?? (error as { code?: unknown }).code;
    if (state === 'TR005' || state === 'TR006' || state === 'TENANT_SUSPENDED' || state === 'TENANT_DELETED')
      return null;
    throw error;
  }
}
