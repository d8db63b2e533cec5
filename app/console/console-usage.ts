import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Queryable } from 'tenantry';
import { METERS, usageReport, usageReportEverywhere, type UsageEverywhereOptions } from 'tenantry/metering';
import { parseInput } from '../http/validation.js';
import { consoleTenant } from './console-tenant.js';

/** The ranges the tenant page offers, and the windows each is drawn in. */
export const USAGE_RANGES = {
  '24h': { hours: 24, granularity: 'hour' },
  '7d': { hours: 7 * 24, granularity: 'hour' },
  '30d': { hours: 30 * 24, granularity: 'day' },
} as const;

const usageQuery = z.object({ range: z.enum(['24h', '7d', '30d']).default('24h') }).strict();

/** One window of a tenant's usage, every meter the console charts (0 where nothing was recorded). */
export interface UsageWindow {
  start: string;
  requests: number;
  dbTimeMs: number;
  rowsWritten: number;
  storageBytes: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Windows of `[from, to)` at `step` with the report's rows filled in: the charts get one point per
 * window, zeros included, so a quiet hour is drawn as a quiet hour and not interpolated away.
 */
export function usageWindows(
  rows: { windowStart: Date; meter: string; quantity: number }[],
  from: Date,
  to: Date,
  stepMs: number,
): UsageWindow[] {
  const windows = new Map<number, UsageWindow>();
  for (let t = from.getTime(); t < to.getTime(); t += stepMs)
    windows.set(t, { start: new Date(t).toISOString(), requests: 0, dbTimeMs: 0, rowsWritten: 0, storageBytes: 0 });
  for (const r of rows) {
    const w = windows.get(r.windowStart.getTime());
    if (!w) continue;
    if (r.meter === METERS.requests) w.requests += r.quantity;
    else if (r.meter === METERS.dbTimeMicros) w.dbTimeMs += r.quantity / 1000;
    else if (r.meter === METERS.rowsWritten) w.rowsWritten += r.quantity;
    else if (r.meter === METERS.storageBytes) w.storageBytes += r.quantity;
  }
  return [...windows.values()].map((w) => ({ ...w, dbTimeMs: Math.round(w.dbTimeMs * 10) / 10 }));
}

/**
 * `GET /console/api/tenants/:tenant/usage?range=24h|7d|30d`: the tenant's metered usage
 * (tenantry/metering's `usageReport`, read as the owner role) per hour (24 h, 7 d) or per UTC day
 * (30 d), up to the end of the current hour or day, for the tenant page's charts.
 */
export function consoleUsageRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; ownerPool?: UsageEverywhereOptions['ownerPool'] },
): void {
  const { catalogPool } = options;
  api.get('/console/api/tenants/:tenant/usage', { config: { query: usageQuery } }, async (request) => {
    const { range } = parseInput(usageQuery, request.query, 'query');
    const tenant = await consoleTenant(catalogPool, request);
    const { hours, granularity } = USAGE_RANGES[range];
    const stepMs = granularity === 'hour' ? HOUR_MS : DAY_MS;
    // windows are UTC hours or days: the range ends with the window that holds now
    const to = new Date(Math.floor(Date.now() / stepMs) * stepMs + stepMs);
    const from = new Date(to.getTime() - hours * HOUR_MS);
    const query = { tenantId: tenant.id, from, to, granularity } as const;
    // with owner connections to the placements: every database the tenant lives or lived in
    const rows = options.ownerPool
      ? await usageReportEverywhere({ catalog: catalogPool, ownerPool: options.ownerPool }, query)
      : await usageReport(catalogPool, query);
    const windows = usageWindows(rows, from, to, stepMs);
    return {
      range,
      granularity,
      from: from.toISOString(),
      to: to.toISOString(),
      empty: rows.every((r) => r.quantity === 0),
      windows,
    };
  });
}
