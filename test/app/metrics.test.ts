import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantMetrics } from '../../src/metrics/index.js';
import { metricsRoute } from '../../app/http/metrics-route.js';
import { telemetryFromEnv } from '../../app/observe/telemetry-from-env.js';
import { activeTelemetry } from '../../src/telemetry/telemetry-hooks.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

const TOKEN = randomBytes(32).toString('base64url');
let f: AppFixture;
let metrics: TenantMetrics;

beforeAll(async () => {
  metrics = new TenantMetrics({ topK: 5 }).install();
  f = await createAppFixture({ configure: (app) => metricsRoute(app, { registry: metrics.registry, token: TOKEN }) });
});
afterAll(async () => {
  metrics?.uninstall();
  await f?.close();
});

describe('GET /metrics', () => {
  it('answers 401 without the token, with a wrong one, and with a tenant owner’s own token or API key', async () => {
    const owner = await f.token(f.users.alice, f.a);
    for (const headers of [
      {},
      { authorization: `Bearer ${TOKEN.slice(0, -1)}x` },
      { authorization: `Bearer ${owner}` },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ]) {
      const res = await f.app.inject({ url: '/metrics', headers });
      expect(res.statusCode, JSON.stringify(headers).slice(0, 30)).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
      expect(res.body).not.toContain('tenantry_tenant');
    }
  });

  it("serves each tenant's requests, DB time and rows by tenant id, with no slug, email or path", async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    await f.insertRecordings(f.a, f.users.alice, 3);
    expect((await f.call('GET', '/recordings', { token: alice })).statusCode).toBe(200);
    expect((await f.call('GET', '/recordings', { token: carol })).statusCode).toBe(200);
    expect((await f.call('GET', '/recordings')).statusCode).toBe(401);
    const res = await f.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const text = res.body;
    expect(text).toContain(`tenantry_tenant_requests_total{tenant="${f.a.id}"} 1`);
    expect(text).toContain(`tenantry_tenant_requests_total{tenant="${f.b.id}"} 1`);
    expect(text).toMatch(new RegExp(`tenantry_tenant_db_rows_total\\{tenant="${f.a.id}"\\} \\d+`));
    expect(text).toContain('tenantry_requests_without_tenant_total{status_class="4xx"} 1');
    for (const secret of [f.a.slug, f.b.slug, f.users.alice.email, '/recordings', alice, carol])
      expect(text).not.toContain(secret);
  });
});

describe('telemetryFromEnv', () => {
  it('refuses a short token, a bad top K and a bad tracing switch at start, with the reason', () => {
    expect(() => telemetryFromEnv({ TENANTRY_METRICS_TOKEN: 'short' })).toThrow(/too short/);
    expect(() => telemetryFromEnv({ TENANTRY_METRICS_TOKEN: TOKEN, TENANTRY_METRICS_TOP_K: 'lots' })).toThrow(
      /TENANTRY_METRICS_TOP_K/,
    );
    expect(() => telemetryFromEnv({ TENANTRY_TRACING: 'yes' })).toThrow(/TENANTRY_TRACING must be on or off/);
  });

  it('installs nothing when nothing is asked, and metrics with tracing when asked', () => {
    metrics.uninstall();
    const none = telemetryFromEnv({});
    expect(none.metrics).toBeUndefined();
    expect(activeTelemetry()).toBeUndefined();
    const both = telemetryFromEnv({
      TENANTRY_METRICS_TOKEN: TOKEN,
      TENANTRY_METRICS_TOP_K: '7',
      TENANTRY_TRACING: 'on',
    });
    try {
      expect(both.metrics?.token).toBe(TOKEN);
      expect(both.tracing).toBeDefined();
      expect(activeTelemetry()).toBeDefined();
    } finally {
      both.uninstall();
    }
    expect(activeTelemetry()).toBeUndefined();
  });
});
