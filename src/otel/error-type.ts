/**
 * What a span says about an error: its stable code (a Tenantry code, or a SQLSTATE), else its
 * class name. Never its message: PostgreSQL's messages quote values (`invalid input syntax for
 * type integer: "…"`, a duplicate key's row) and an application's may carry anything.
 */
export function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
  const name = (error as { name?: unknown } | null)?.name;
  return typeof name === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(name) ? name : 'Error';
}
