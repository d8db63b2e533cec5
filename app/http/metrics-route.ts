import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { bearerCredential } from 'tenantry';
import { ApiError } from './api-error.js';

/** What the route serves: a prom-client registry (TenantMetrics.registry). */
export interface MetricsRegistry {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/**
 * `GET /metrics`: the per-tenant Prometheus metrics, to the scraper that shows the bearer token
 * only (401 otherwise, the same for a tenant's token or API key: the metrics name every busy
 * tenant, which no tenant may see). Outside the tenant scope: no tenant is resolved.
 */
export function metricsRoute(app: FastifyInstance, options: { registry: MetricsRegistry; token: string }): void {
  const expected = digest(options.token);
  app.get('/metrics', async (request, reply) => {
    // read as the tenant routes read it (the library's parser): the scheme in any case, and an
    // Authorization header sent twice refused, never settled by taking one of them
    const presented = bearerCredential({ headers: request.headers, rawHeaders: request.raw.rawHeaders });
    if (presented === 'malformed') {
      reply.header('www-authenticate', 'Bearer');
      throw new ApiError(
        401,
        'UNAUTHENTICATED',
        'The Authorization header is malformed or repeated: send one, as Bearer <credential>',
      );
    }
    // compared as digests: constant time whatever the length presented
    if (presented === undefined || !timingSafeEqual(digest(presented), expected)) {
      reply.header('www-authenticate', 'Bearer');
      throw new ApiError(401, 'UNAUTHENTICATED', 'The metrics endpoint needs its bearer token');
    }
    reply.header('cache-control', 'no-store');
    return reply.type(options.registry.contentType).send(await options.registry.metrics());
  });
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
