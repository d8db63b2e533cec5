import { TenantMetrics } from 'tenantry/metrics';
import { hasTracerProvider, installTenantTracing, type TenantTracing } from 'tenantry/otel';

/** The metrics endpoint's registry and bearer token. */
export interface ServedMetrics {
  metrics: TenantMetrics;
  token: string;
}

/** What the reference server observes, from its environment. */
export interface TelemetryFromEnv {
  /** Per-tenant Prometheus metrics, served at GET /metrics (absent when TENANTRY_METRICS_TOKEN is unset). */
  metrics?: ServedMetrics;
  /** Spans with tenant.id (TENANTRY_TRACING=on). */
  tracing?: TenantTracing;
  /** Stops reporting. */
  uninstall(): void;
}

/** The shortest metrics token accepted: a guessable one would open every tenant's figures. */
export const MIN_METRICS_TOKEN_LENGTH = 32;

/**
 * Reads the reference server's telemetry settings; a bad value fails the start with the reason:
 *
 * - `TENANTRY_METRICS_TOKEN` (≥ 32 characters): serves `GET /metrics` to
 *   `Authorization: Bearer <token>` only (Prometheus' `bearer_token_file`). Unset: no endpoint.
 * - `TENANTRY_METRICS_TOP_K` (default 20): tenants with a label of their own; the rest are `other`.
 * - `TENANTRY_TRACING` (`on` / `off`, default off): spans with `tenant.id` through
 *   `@opentelemetry/api`; where they go is the OpenTelemetry SDK's configuration (`OTEL_*`
 *   variables, see docs/tracing.md). `on` without a registered SDK stops the start: the spans
 *   would go nowhere, silently.
 */
export function telemetryFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  options: { hasProvider?: () => boolean } = {},
): TelemetryFromEnv {
  const token = env.TENANTRY_METRICS_TOKEN;
  const topKText = env.TENANTRY_METRICS_TOP_K?.trim();
  const tracingText = env.TENANTRY_TRACING?.trim().toLowerCase();
  if (token !== undefined && token.length < MIN_METRICS_TOKEN_LENGTH)
    throw new Error(
      `TENANTRY_METRICS_TOKEN is too short (${token.length} characters): give at least ${MIN_METRICS_TOKEN_LENGTH}, e.g. openssl rand -base64 32`,
    );
  if (token !== undefined && /\s/.test(token)) throw new Error('TENANTRY_METRICS_TOKEN must not contain spaces');
  if (token !== undefined && !/^[A-Za-z0-9_\-.~+/]+=*$/.test(token))
    throw new Error(
      'TENANTRY_METRICS_TOKEN must be base64 or base64url (letters, digits and - . _ ~ + / with = at the end)',
    );
  let topK = 20;
  if (topKText !== undefined && topKText !== '') {
    if (!/^\d{1,5}$/.test(topKText) || Number(topKText) < 1 || Number(topKText) > 10_000)
      throw new Error(`TENANTRY_METRICS_TOP_K must be a whole number from 1 to 10000 (got "${topKText}")`);
    topK = Number(topKText);
  }
  if (tracingText !== undefined && tracingText !== '' && tracingText !== 'on' && tracingText !== 'off')
    throw new Error(`TENANTRY_TRACING must be on or off (got "${env.TENANTRY_TRACING}")`);
  if (tracingText === 'on' && !(options.hasProvider ?? hasTracerProvider)())
    throw new Error(
      'TENANTRY_TRACING=on, but no OpenTelemetry SDK is registered, so no span would be recorded: install one ' +
        "and start with its register hook (NODE_OPTIONS='--import @opentelemetry/auto-instrumentations-node/register', " +
        'see docs/tracing.md), or set TENANTRY_TRACING=off',
    );
  const metrics = token === undefined ? undefined : { metrics: new TenantMetrics({ topK }).install(), token };
  const tracing = tracingText === 'on' ? installTenantTracing() : undefined;
  return {
    ...(metrics ? { metrics } : {}),
    ...(tracing ? { tracing } : {}),
    uninstall() {
      metrics?.metrics.uninstall();
      tracing?.uninstall();
    },
  };
}
