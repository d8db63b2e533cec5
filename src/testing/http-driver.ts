/** One HTTP request of a route attempt. `body`, when given, is sent as JSON. */
export interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: unknown;
}

/** What the route attempts read from a response. */
export interface HttpResponse {
  status: number;
  body: string;
}

/** Sends a request to the application under test: in-process (`fastifyDriver`) or over the network (`fetchDriver`). */
export interface HttpDriver {
  request(request: HttpRequest): Promise<HttpResponse>;
}

/** The part of a Fastify instance (or anything with light-my-request's `inject`) the driver uses. */
export interface InjectTarget {
  inject(options: {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- light-my-request's own option types, structurally
    method: any;
    url: string;
    headers: Record<string, string>;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- light-my-request's own option types, structurally
    payload?: any;
  }): PromiseLike<{ statusCode: number; body: string }>;
}

/**
 * Drives a Fastify app in process with `app.inject` (no socket).
 *
 * @example
 * http: { driver: fastifyDriver(app), credentials: (p) => ({ authorization: `Bearer ${tokenFor(p)}` }) }
 */
export function fastifyDriver(app: InjectTarget): HttpDriver {
  return {
    async request({ method, path, headers, body }) {
      const res = await app.inject({
        method,
        url: path,
        headers,
        ...(body === undefined ? {} : { payload: body as object }),
      });
      return { status: res.statusCode, body: res.body };
    },
  };
}

/**
 * Drives a running server at `baseUrl` with `fetch` (Node 20's, or the one you pass).
 *
 * @example
 * http: { driver: fetchDriver('http://127.0.0.1:3000'), credentials: … }
 */
export function fetchDriver(baseUrl: string | URL, fetchImpl: typeof fetch = globalThis.fetch): HttpDriver {
  return {
    async request({ method, path, headers, body }) {
      const res = await fetchImpl(new URL(path, baseUrl), {
        method,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        redirect: 'manual',
      });
      return { status: res.status, body: await res.text() };
    },
  };
}
