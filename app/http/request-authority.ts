import type { FastifyInstance } from 'fastify';
import { AccessError, checkRequestAuthority } from 'tenantry';

/**
 * Every route, public ones included, refuses a request whose authority is ambiguous: no Host on
 * HTTP/1.1, more than one Host, or a Host that is not a host with an optional port (400 HOST_INVALID), or an absolute-form target
 * (`GET http://a.example/x`) naming another host than Host (400 HOST_MISMATCH). The tenant
 * routes' resolver checks the same; this hook makes the answer the same everywhere, before any
 * route reads the host.
 */
export function installRequestAuthorityCheck(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    // HTTP/1.1 requires Host (RFC 9112 §3.2); HTTP/1.0 may leave it out
    if (request.headers.host === undefined && request.raw.httpVersion !== '1.0')
      throw new AccessError('HOST_INVALID', { message: 'The request has no Host header: HTTP/1.1 requires one' });
    // Node keeps the first of several Host headers; a proxy may route by the last: RFC 9112 §3.2
    // says to answer 400 rather than pick one
    let hosts = 0;
    const raw = request.raw.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === 'host') hosts++;
    if (hosts > 1) throw new AccessError('HOST_INVALID', { message: 'The request has more than one Host header' });
    checkRequestAuthority({ host: request.headers.host, headers: request.headers, target: request.raw.url });
  });
}
