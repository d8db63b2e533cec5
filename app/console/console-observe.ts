import type { FastifyInstance } from 'fastify';
import type { Queryable } from 'tenantry';
import type { UsageEverywhereOptions } from 'tenantry/metering';
import { consoleClusterRoutes } from './console-clusters.js';
import { consoleDoctorRoutes, type ConsoleDoctor } from './console-doctor.js';
import { consoleTopRoutes } from './console-top.js';
import { consoleUsageRoutes } from './console-usage.js';

/** What the console's observation pages read besides the catalog (all optional). */
export interface ConsoleObserveOptions {
  /** A URL of each cluster's shared database, as a superuser or the owner role: its load (clusters page) and the doctor. */
  clusterUrls?: Record<string, string>;
  /** The doctor's bound and, for tests, its audit (default: `doctorEverywhere` over `clusterUrls`). */
  doctor?: Omit<ConsoleDoctor, 'clusters'>;
  /**
   * An owner connection to a placement's database: the usage charts then read every database the
   * tenant lives or has lived in (`usageReportEverywhere`), not only the catalog's.
   */
  usageOwnerPool?: UsageEverywhereOptions['ownerPool'];
}

/**
 * The console's read-only pages (docs/console.md): a tenant's usage over time, the top tenants
 * now with the placement policy's advice, clusters and their load, and the doctor. Registered
 * inside the console's staff-only scope: the same cookie, the same guard.
 */
export function consoleObserveRoutes(
  api: FastifyInstance,
  options: ConsoleObserveOptions & { catalogPool: Queryable; onError: (error: unknown) => void },
): void {
  const { catalogPool } = options;
  const clusterUrls = options.clusterUrls ?? {};
  consoleUsageRoutes(api, {
    catalogPool,
    ...(options.usageOwnerPool ? { ownerPool: options.usageOwnerPool } : {}),
  });
  consoleTopRoutes(api, { catalogPool });
  consoleClusterRoutes(api, { catalogPool, clusterUrls });
  if (options.clusterUrls)
    consoleDoctorRoutes(api, {
      catalogPool,
      doctor: { ...options.doctor, clusters: clusterUrls },
      onError: options.onError,
    });
}
