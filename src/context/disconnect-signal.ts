import { RequestAbortedError } from '../errors/wait-errors.js';

/** The slice of Node's http.ServerResponse that tells a finished answer from a client gone away. */
export interface ClosableResponse {
  readonly writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/**
 * An AbortSignal that aborts (REQUEST_ABORTED) when the client goes away before its answer is
 * written: the response closes unfinished. Listening on the response, not the request: Node
 * closes an IncomingMessage as soon as its body has been read, while the client is still there.
 * Run the request's work under it (`runAs(tenant, fn, { signal })` or `runWithSignal`): what it
 * has not sent is not sent, what runs is cancelled.
 *
 * @example
 * app.get('/report', (req, res) =>
 *   runAs(tenantId, () => pool.query('select count(*) from recordings'), { signal: disconnectSignal(res) }));
 */
export function disconnectSignal(response: ClosableResponse): AbortSignal {
  const controller = new AbortController();
  response.once('close', () => {
    if (!response.writableFinished) controller.abort(new RequestAbortedError());
  });
  return controller.signal;
}
