import type { FastifyInstance } from 'fastify';
import { checkRequestAuthority } from 'tenantry';

/**
 * Every route, public ones included, refuses a request whose authority is ambiguous: a Host
 * that is not a host with an optional port (400 HOST_INVALID), or an absolute-form target
 * (`GET http://a.example/x`) naming another host than Host (400 HOST_MISMATCH). The tenant
 * routes' resolver checks the same; this hook makes the answer the same everywhere, before any
 * route reads the host.
 */
export function installRequestAuthorityCheck(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    checkRequestAuthority({ host: request.headers.host, headers: request.headers, target: request.raw.url });
  });
}
