import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantMetrics } from '../../src/metrics/index.js';
import { metricsRoute } from '../../app/http/metrics-route.js';
import { telemetryFromEnv } from '../../app/observe/telemetry-from-env.js';
import { activeTelemetry } from '../../src/telemetry/telemetry-hooks.js';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { hasTracerProvider } from '../../src/otel/index.js';
import { createLogger } from '../../app/logger.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';
import { rawRequest } from './support/raw-http.js';

const TOKEN = randomBytes(32).toString('base64url');
let f: AppFixture;
let metrics: TenantMetrics;
let port: number;
const lines: string[] = [];

beforeAll(async () => {
  metrics = new TenantMetrics({ topK: 5 }).install();
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } });
  f = await createAppFixture({
    logger,
    configure: (app) => metricsRoute(app, { registry: metrics.registry, token: TOKEN }),
  });
  await f.app.listen({ port: 0, host: '127.0.0.1' });
  port = (f.app.server.address() as { port: number }).port;
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

describe('GET /metrics: the bearer read as the tenant routes read it', () => {
  it('takes the scheme in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      const res = await f.app.inject({ url: '/metrics', headers: { authorization: `${scheme} ${TOKEN}` } });
      expect(res.statusCode, scheme).toBe(200);
    }
  });

  it('refuses an Authorization header sent twice, even when both carry the token, as the tenant routes do', async () => {
    const get = (path: string, headers: string) =>
      rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`);
    const twice = await get('/metrics', `Authorization: Bearer ${TOKEN}\r\nAuthorization: Bearer ${TOKEN}\r\n`);
    expect(twice.status).toBe(401);
    expect(JSON.parse(twice.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    expect(twice.body).not.toContain('tenantry_tenant');
    // the tenant routes answer a repeated header the same way
    const alice = await f.token(f.users.alice, f.a);
    const tenantTwice = await get('/me', `Authorization: Bearer ${alice}\r\nAuthorization: Bearer ${alice}\r\n`);
    expect(tenantTwice.status).toBe(401);
    expect(JSON.parse(tenantTwice.body)).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    // one header is served
    expect((await get('/metrics', `Authorization: Bearer ${TOKEN}\r\n`)).status).toBe(200);
  });

  it('a token in the query string is never logged (scrubbed from every logged URL)', async () => {
    const secret = randomBytes(16).toString('hex');
    for (const url of [
      `/metrics?token=${secret}`,
      `/metrics?access_token=${secret}&x=1`,
      `/me?api_key=${secret}`,
      `/recordings?limit=1&key=${secret}`,
      `/nowhere?client_secret=${secret}`,
    ])
      expect((await f.app.inject({ url })).statusCode).toBeLessThan(500);
    const all = lines.join('');
    expect(all).toContain('token=[redacted]');
    expect(all).not.toContain(secret);
  });
});

describe('telemetryFromEnv', () => {
  it('refuses a short token, a bad top K and a bad tracing switch at start, with the reason', () => {
    expect(() => telemetryFromEnv({ TENANTRY_METRICS_TOKEN: 'short' })).toThrow(/too short/);
    expect(() => telemetryFromEnv({ TENANTRY_METRICS_TOKEN: TOKEN, TENANTRY_METRICS_TOP_K: 'lots' })).toThrow(
      /TENANTRY_METRICS_TOP_K/,
    );
    expect(() => telemetryFromEnv({ TENANTRY_TRACING: 'yes' })).toThrow(/TENANTRY_TRACING must be on or off/);
    expect(() => telemetryFromEnv({ TENANTRY_METRICS_TOKEN: `${TOKEN}!` })).toThrow(/base64/);
  });

  it('tracing on without an OpenTelemetry SDK stops the start saying so, instead of reporting nowhere', () => {
    // nothing registered in this process: the API hands out no-op tracers
    expect(hasTracerProvider()).toBe(false);
    expect(() => telemetryFromEnv({ TENANTRY_TRACING: 'on' })).toThrow(/no OpenTelemetry SDK is registered/);
    expect(() => telemetryFromEnv({ TENANTRY_TRACING: 'on' })).toThrow(/TENANTRY_TRACING=off/);
    // a real provider (the SDK's) is seen, without registering it globally
    expect(hasTracerProvider(new BasicTracerProvider())).toBe(true);
    expect(telemetryFromEnv({ TENANTRY_TRACING: 'off' }).tracing).toBeUndefined();
  });

  it('installs nothing when nothing is asked, and metrics with tracing when asked', () => {
    metrics.uninstall();
    const none = telemetryFromEnv({});
    expect(none.metrics).toBeUndefined();
    expect(activeTelemetry()).toBeUndefined();
    const both = telemetryFromEnv(
      { TENANTRY_METRICS_TOKEN: TOKEN, TENANTRY_METRICS_TOP_K: '7', TENANTRY_TRACING: 'on' },
      { hasProvider: () => true },
    );
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
