// The Citus test files share the coordinator's database (installs, shard splits and moves are
// cluster-wide): run them one file at a time, `npx vitest run test/citus/ --no-file-parallelism`.
/** The coordinator's superuser URL (a database with the citus extension and its workers), or undefined. */
export const CITUS_URL = process.env.CITUS_URL || undefined;

/** The context secret the Citus tests install (the database keeps the first one installed). */
export const CITUS_SECRET = process.env.CITUS_CONTEXT_SECRET ?? 'citus-test-context-secret-0123456789abcdef';

/** The coordinator's URL as the application role (trust or TENANTRY_CITUS_APP_PASSWORD). */
export function citusAppUrl(adminUrl = CITUS_URL!, role = 'tenantry_app'): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = process.env.TENANTRY_CITUS_APP_PASSWORD ?? '';
  return url.toString();
}

/** The SQLSTATE (or Tenantry code) of an error, for asserting refusals. */
export function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
