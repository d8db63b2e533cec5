import { describePooler, detectPooler, type PoolerDetection } from '../data/pooler-self-test.js';

/**
 * The pooler part of `tenantry doctor`: the self-test a TenantPool runs at start, run against
 * the app role's URL (the path the application's connections take: through a pooler when
 * TENANTRY_APP_DATABASE_URL points at one). Informational: it never changes the exit code.
 */
export async function poolerReport(appUrl: string): Promise<PoolerDetection> {
  return detectPooler(appUrl, { timeoutMs: 5000 });
}

/** The lines doctor prints: what was found, what it means for the context prefix, and the evidence. */
export function formatPoolerReport(info: PoolerDetection): string {
  const advice =
    info.mode === 'transaction'
      ? info.namedStatements === 'safe'
        ? 'the context is transaction-local, so isolation holds here; prepareContextStatement may be used (the pooler manages named statements)'
        : 'the context is transaction-local, so isolation holds here; leave prepareContextStatement off (a TenantPool with it on falls back to the unnamed prefix here)'
      : info.mode === 'unknown'
        ? 'a TenantPool uses the unnamed prefix (safe behind any pooler) until it can tell'
        : 'every prefix form is safe here';
  return [
    `pooler (the app role's connections): ${describePooler(info)}`,
    `  ${advice}`,
    ...info.evidence.map((e) => `  - ${e}`),
  ].join('\n');
}
