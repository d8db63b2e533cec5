import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { currentTenant, runAs, type Queryable } from 'tenantry';
import { resolutionOf } from 'tenantry/fastify';
import {
  exportUsage,
  exportUsageEverywhere,
  METERS,
  usageReport,
  usageReportEverywhere,
  type UsageEverywhereOptions,
  type UsageRecorder,
} from 'tenantry/metering';
import {
  RATE_LIMIT_HEADER_NAMES,
  RateLimitedError,
  rateLimitHeaders,
  refusedByRateLimit,
  type TenantRateLimits,
} from 'tenantry/limits';
import { adminOf } from '../auth/tenant-scope.js';
import { ApiError } from '../http/api-error.js';
import { parseInput } from '../http/validation.js';

const time = (field: string) =>
  z
    .string()
    .max(40)
    .regex(/^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/, `${field} must be an ISO date or date-time`)
    // not rolled over: 2026-02-30 is refused, not read as March 2
    .refine((v) => isCalendarDate(v.slice(0, 10)), `${field} is not a date on the calendar`)
    .transform((v) => new Date(/T/.test(v) ? v : `${v}T00:00:00Z`))
    .refine((d) => !Number.isNaN(d.getTime()), `${field} must be a valid time`);

function isCalendarDate(ymd: string): boolean {
  const [year, month, day] = ymd.split('-').map(Number) as [number, number, number];
  const d = new Date(Date.UTC(year, month - 1, day));
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

const reportQuery = z
  .object({
    from: time('from'),
    to: time('to'),
    granularity: z.enum(['hour', 'day', 'total']).default('total'),
    byTable: z.enum(['true', 'false']).default('false'),
  })
  .strict();
const exportQuery = z.object({ from: time('from'), to: time('to') }).strict();

/**
 * Usage reads of one tenant running at once on this instance. They read as the owner role over a
 * small pool shared by every tenant, outside the tenant pools' fair share: one tenant's burst of
 * reports (within its `api` limit) would otherwise queue every other tenant's behind it (try-out
 * of issue 12: 10-14× slower). One at a time per tenant; the next gets 429 with Retry-After: 1.
 */
const USAGE_READS_PER_TENANT = 1;
const usageReads = new Map<string, number>();

async function oneUsageRead<T>(tenantId: string, read: () => Promise<T>): Promise<T> {
  const running = usageReads.get(tenantId) ?? 0;
  if (running >= USAGE_READS_PER_TENANT)
    throw new RateLimitedError({ limit: 'usage-read', scope: 'tenant', retryAfterSeconds: 1 });
  usageReads.set(tenantId, running + 1);
  try {
    return await read();
  } finally {
    const left = (usageReads.get(tenantId) ?? 1) - 1;
    if (left <= 0) usageReads.delete(tenantId);
    else usageReads.set(tenantId, left);
  }
}

/** Export ranges are bounded (the request deadline bounds the answer too): one billing month and a bit. */
const MAX_EXPORT_DAYS = 31;

function checkRange(from: Date, to: Date, maxDays: number): void {
  if (from.getTime() >= to.getTime()) throw new ApiError(400, 'VALIDATION_FAILED', 'from must be before to');
  if (to.getTime() - from.getTime() > maxDays * 86_400_000)
    throw new ApiError(400, 'VALIDATION_FAILED', `the range covers at most ${maxDays} days`);
}

/**
 * Usage metering (tenant routes, owners and admins of the tenant, and staff acting as it under a
 * grant with `X-Tenant`):
 * - `GET /usage?from=&to=&granularity=hour|day|total&byTable=` the tenant's usage per meter, from
 *   every database it lives or has lived in when `everywhere` is given
 * - `GET /usage/events?from=&to=` the tenant's usage records as CloudEvents, one JSON object a line
 *   (an export: counted against the tenant's `export` limit when limits are on)
 * Both read through the app role inside the tenant's context: the database's policies return this
 * tenant's rows only, whatever the query asks.
 *
 * With a recorder, every tenant request is metered (`requests`, one per response, exactly once),
 * except those its rate limit refused (429).
 */
export function usageRoutes(
  scope: FastifyInstance,
  {
    appPool,
    usage,
    limits,
    everywhere,
  }: {
    appPool: Queryable;
    usage?: UsageRecorder | undefined;
    /** Counts each `GET /usage/events` (an export) against the tenant's `export` limit. */
    limits?: Pick<TenantRateLimits, 'consume'> | undefined;
    /**
     * Where usage is read from for `GET /usage`: every database the tenant lives or has lived in
     * (the catalog and placements as the owner role), so a tenant moved to its own database still
     * sees what it wrote before. Without it, the home database only (through `appPool`).
     */
    everywhere?: UsageEverywhereOptions | undefined;
  },
): void {
  if (usage) {
    // before the response is sent, so a request answered is a request metered, even if the
    // process dies right after (a crash then loses nothing acknowledged): one group-committed
    // insert per batch of concurrent requests (≈ one round trip of latency when idle)
    scope.addHook('onSend', async (request, reply, payload) => {
      if (!request.tenantry) return payload; // refused before a tenant was resolved: nobody to bill
      // a request its rate limit refused (429) or blocked (403 LIMIT_NOT_IN_PLAN) did no work: not
      // billed (docs/metrics.md, docs/metering.md)
      if (reply.statusCode === 429 || refusedByRateLimit(request)) return payload;
      const tenantId = resolutionOf(request).tenantId;
      await usage
        .record(
          { tenantId, meter: METERS.requests, quantity: 1, key: `req:${randomUUID()}`, subject: request.method },
          { now: true },
        )
        // the request's own answer is not failed for its metering: logged (and not acknowledged)
        .catch((error: unknown) => request.log.warn({ err: error }, 'usage: a request was not metered'));
      return payload;
    });
  }

  scope.get('/usage', { config: { query: reportQuery } }, async (request) => {
    adminOf(request);
    const q = parseInput(reportQuery, request.query, 'query');
    checkRange(q.from, q.to, q.granularity === 'hour' ? 92 : 366);
    const query = {
      // the resolved tenant's id only: the owner-role reads below are filtered by it
      tenantId: currentTenant(),
      from: q.from,
      to: q.to,
      granularity: q.granularity,
      bySubject: q.byTable === 'true',
    };
    const rows = await oneUsageRead(query.tenantId, () =>
      everywhere ? usageReportEverywhere(everywhere, query) : usageReport(appPool, query),
    );
    return {
      from: q.from,
      to: q.to,
      granularity: q.granularity,
      items: rows.map((r) => ({
        windowStart: r.windowStart,
        meter: r.meter,
        subject: r.subject,
        quantity: r.quantity,
      })),
    };
  });

  scope.get('/usage/events', { config: { query: exportQuery } }, async (request, reply) => {
    adminOf(request);
    const q = parseInput(exportQuery, request.query, 'query');
    checkRange(q.from, q.to, MAX_EXPORT_DAYS);
    const tenantId = currentTenant();
    // an export reads a month of records: the plan's exports an hour (429 RATE_LIMITED past it)
    // the answer carries this limit's headers, not the `api` limit's the request hook set
    if (limits) {
      const answerFor = (outcome: Parameters<typeof rateLimitHeaders>[0]) => {
        for (const name of RATE_LIMIT_HEADER_NAMES) reply.removeHeader(name);
        reply.headers(rateLimitHeaders(outcome));
      };
      try {
        answerFor(await limits.consume(tenantId, 'export'));
      } catch (error) {
        if (error instanceof RateLimitedError) answerFor(error);
        throw error;
      }
    }
    const query = { from: q.from, to: q.to, tenantId, source: 'tenantry-reference-server' };
    // every database the tenant lives or has lived in (as GET /usage reads), as the owner role
    // filtered by the resolved tenant's id; without that set-up, the home database as the tenant
    const events = everywhere ? exportUsageEverywhere(everywhere, query) : exportUsage(appPool, query);
    // each page is read inside the tenant's context (the stream is pulled by the socket, outside
    // the handler's); the first one before answering, so a failure there is a proper API error
    const next = () => runAs(tenantId, () => events.next());
    const first = await next();
    async function* lines(): AsyncGenerator<string> {
      for (let r = first; !r.done; r = await next()) yield `${JSON.stringify(r.value)}\n`;
    }
    return reply.type('application/x-ndjson').send(Readable.from(lines()));
  });
}
