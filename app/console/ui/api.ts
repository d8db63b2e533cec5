/** The console's calls to its JSON API: same origin, the session cookie, the CSRF token on changes. */
let csrf = '';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function setCsrf(token: string): void {
  csrf = token;
}

/** The session's CSRF token, for the calls that are not JSON (a download). */
export function csrfToken(): string {
  return csrf;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  const response = await fetch(`/console/api${path}`, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  if (response.status === 204) return undefined as T;
  const data = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
  if (!response.ok)
    throw new ApiFailure(response.status, data.error?.code ?? 'ERROR', data.error?.message ?? response.statusText);
  return data as T;
}
