import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { currentTenant, isDatabaseUnavailable, TenantryError, type TenantResolver } from 'tenantry';
import type { TenantEvent, TenantEventBus } from 'tenantry/live';
import { validationFailed } from '../http/api-error.js';

/** Options of {@link eventRoutes}. */
export interface EventRoutesOptions {
  bus: TenantEventBus;
  /** A comment line every so often keeps proxies from closing an idle stream; default 15 s. */
  heartbeatMs?: number;
  /**
   * The server ends a stream after this long (default 10 minutes); the client reconnects with
   * Last-Event-ID and its token is checked again, so a revoked membership or an expired token
   * stops the events within this bound.
   */
  maxStreamMs?: number;
  /** Events a slow client may fall behind before its stream is ended; default 256. */
  queueLimit?: number;
  /**
   * Re-resolves the stream's request this often (default 15 s): a signed-out session, a removed
   * member, a revoked API key, a closed staff grant or a suspended tenant ends the stream within
   * this bound, with a final `event: end` frame naming the refusal's code. A re-check that fails
   * because the database is unavailable ends nothing: the stream stays open through an outage.
   */
  resolver?: TenantResolver<unknown>;
  recheckMs?: number;
}

const LAST_EVENT_ID = /^\d{1,15}$/;

/**
 * `GET /events`: the caller's tenant's events as Server-Sent Events. Registered inside the tenant
 * scope, so the tenant is whatever the scope's authentication resolved, like every route, and
 * the handler runs inside `runAs(tenant)`.
 *
 * Frames: `id: <seq>`, `event: <topic>`, `data: {"seq","topic","data","createdAt"}`. A client
 * that reconnects with `Last-Event-ID: <seq>` gets what it missed first.
 */
export function eventRoutes(scope: FastifyInstance, options: EventRoutesOptions): void {
  const { bus, heartbeatMs = 15_000, maxStreamMs = 10 * 60_000, queueLimit, resolver, recheckMs = 15_000 } = options;
  const open = new Set<() => void>();
  // Fastify waits for open connections when closing: end the streams first
  scope.addHook('preClose', async () => {
    for (const end of [...open]) end();
  });

  scope.get('/events', async (request, reply) => {
    const after = lastEventId(request.headers['last-event-id']);
    const tenant = currentTenant();
    const raw = reply.raw;
    // eslint-disable-next-line prefer-const -- assigned once later, read by the cleanup defined before it
    let unsubscribe: (() => void) | undefined;
    let ended = false;
    const timers: NodeJS.Timeout[] = [];
    const end = () => {
      if (ended) return;
      ended = true;
      open.delete(end);
      for (const timer of timers) clearTimeout(timer);
      unsubscribe?.();
      if (!raw.writableEnded) raw.end();
    };
    const begin = () => {
      if (raw.headersSent) return;
      reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store, no-transform',
        'x-accel-buffering': 'no',
      });
      raw.write('retry: 2000\n\n');
    };

    // subscribing before the 200 lets a failure still answer as JSON (503 / 500)
    unsubscribe = await bus.subscribe(
      tenant,
      async (event) => {
        begin();
        await write(raw, frame(event));
      },
      {
        ...(after === undefined ? {} : { after }),
        ...(queueLimit === undefined ? {} : { queueLimit }),
        onEnd: () => end(),
      },
    );
    begin();
    if (ended) return; // the subscription already ended (the bus is closing)
    open.add(end);
    // the response's 'close' is the client going away (the request's fires once it was read)
    raw.on('close', end);
    if (raw.destroyed || request.raw.socket.destroyed) return end();
    timers.push(
      setInterval(() => void write(raw, ': ping\n\n'), heartbeatMs),
      setTimeout(end, maxStreamMs),
    );
    if (resolver) {
      const facts = {
        host: request.headers.host,
        headers: { ...request.headers },
        target: request.raw.url,
        method: request.method,
        path: request.routeOptions.url,
      };
      timers.push(
        setInterval(() => {
          resolver.resolve(facts).then(
            (resolution) => {
              if (resolution.tenantId !== tenant) void write(raw, endFrame('TENANT_CONFLICT')).then(end);
            },
            (error: unknown) => {
              // the database is down or restarting: not a refusal. The stream stays open (the bus
              // catches up when it is back) and the next re-check decides
              if (isDatabaseUnavailable(error)) return;
              void write(raw, endFrame(error instanceof TenantryError ? error.code : 'INTERNAL')).then(end);
            },
          );
        }, recheckMs),
      );
    }
  });
}

function lastEventId(header: string | string[] | undefined): number | undefined {
  if (header === undefined || header === '') return undefined;
  if (typeof header !== 'string' || !LAST_EVENT_ID.test(header))
    throw validationFailed('Last-Event-ID must be the id of an event this stream sent', 'last-event-id');
  return Number(header);
}

/** The last frame of a stream whose credentials stopped resolving: the client should not simply reconnect. */
function endFrame(code: string): string {
  return `event: end\ndata: ${JSON.stringify({ code })}\n\n`;
}

function frame(event: TenantEvent): string {
  const data = JSON.stringify({
    seq: event.seq,
    topic: event.topic,
    data: event.payload,
    createdAt: event.createdAt.toISOString(),
  });
  return `id: ${event.seq}\nevent: ${event.topic}\ndata: ${data}\n\n`;
}

// Resolves once the client took the chunk (or went away): a slow client fills its bounded queue
// and is cut off, instead of buffering here
function write(raw: ServerResponse, chunk: string): Promise<void> {
  if (raw.destroyed || raw.writableEnded) return Promise.resolve();
  if (raw.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      raw.off('drain', done);
      raw.off('close', done);
      resolve();
    };
    raw.once('drain', done);
    raw.once('close', done);
  });
}
