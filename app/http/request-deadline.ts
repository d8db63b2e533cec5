import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { currentSignal, DeadlineExceededError, disconnectSignal, runWithSignal } from 'tenantry';

/** Default of {@link installRequestDeadline}'s `deadlineMs`. */
export const DEFAULT_REQUEST_DEADLINE_MS = 10_000;

/**
 * Every route's handler ends by a deadline: past it the request answers 504 DEADLINE_EXCEEDED at
 * once, and the work's signal aborts, so the pools send none of its statements still waiting and
 * cancel the one running. A client that disconnects aborts the signal too (REQUEST_ABORTED). The
 * clock starts when the request arrives, so time spent in the hooks (tenant resolution) counts.
 * Register before the routes (`onRoute` sees only routes added after it).
 */
export function installRequestDeadline(app: FastifyInstance, { deadlineMs }: { deadlineMs: number }): void {
  const arrivals = new WeakMap<FastifyRequest, number>();
  app.addHook('onRequest', async (request) => {
    arrivals.set(request, Date.now());
  });
  app.addHook('onRoute', (route) => {
    const handler = route.handler as (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => unknown;
    route.handler = function deadlineHandler(this: FastifyInstance, request, reply) {
      const controller = new AbortController();
      const left = (arrivals.get(request) ?? Date.now()) + deadlineMs - Date.now();
      const timer = setTimeout(() => controller.abort(new DeadlineExceededError(deadlineMs)), Math.max(0, left));
      // with the tenant adapter's signal when inside a tenant route (it aborts on disconnect too)
      const outer = currentSignal();
      const signal = AbortSignal.any(
        outer ? [controller.signal, outer] : [controller.signal, disconnectSignal(reply.raw)],
      );
      const work = Promise.resolve().then(() => runWithSignal(signal, () => handler.call(this, request, reply)));
      const aborted = new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
      // the work goes on only until its next statement (refused) or its running one (cancelled)
      work.catch(() => undefined);
      aborted.catch(() => undefined);
      return Promise.race([work, aborted]).finally(() => clearTimeout(timer));
    };
  });
}
