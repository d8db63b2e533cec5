import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ConfigurationError } from '../../src/errors/tenantry-error.js';
import { OTHER_TENANTS, SpaceSaving, TenantMetrics } from '../../src/metrics/index.js';

/** Distinct `tenant` label values of each per-tenant metric (a histogram's buckets count once). */
async function tenantSeries(registry: Registry): Promise<Record<string, Set<string>>> {
  const out: Record<string, Set<string>> = {};
  for (const metric of await registry.getMetricsAsJSON()) {
    const values = (metric as unknown as { values: { labels: Record<string, string | number> }[] }).values;
    const tenants = values.map((v) => v.labels.tenant).filter((t): t is string => typeof t === 'string');
    if (tenants.length > 0 || metric.name.includes('tenant_')) out[metric.name] = new Set(tenants);
  }
  return out;
}

/** A deterministic pseudo-random generator (mulberry32), so a failure reproduces. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('TenantMetrics: bounded cardinality', () => {
  it('never has more than K + 1 tenant series per metric with 10,000 tenants, window after window', async () => {
    const K = 10;
    let now = 0;
    const metrics = new TenantMetrics({ topK: K, windowMs: 60_000, now: () => now });
    const tenants = Array.from({ length: 10_000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
    const next = random(12);
    // the heavy tenants change halfway: the top K must follow without ever exceeding K + 1
    const heavyOf = (phase: number) => tenants.slice(phase * 100, phase * 100 + K);
    let worst = 0;
    for (let window = 0; window < 8; window++) {
      const heavy = heavyOf(window < 4 ? 0 : 1);
      for (let i = 0; i < 20_000; i++) {
        const tenant = i % 4 === 0 ? heavy[(i / 4) % K]! : tenants[Math.floor(next() * tenants.length)]!;
        const cost = heavy.includes(tenant) ? 0.05 : 0.001;
        metrics.recordRequest(tenant, i % 50 === 0 ? 503 : 200, cost);
        metrics.recordStatement(tenant, cost, 3);
        if (i % 10 === 0) metrics.recordRateLimited(tenant);
        if (i % 2_000 === 0) {
          for (const [name, set] of Object.entries(await tenantSeries(metrics.registry))) {
            expect(set.size, name).toBeLessThanOrEqual(K + 1);
            worst = Math.max(worst, set.size);
          }
        }
      }
      now += 60_000; // the next event starts a new window
    }
    const series = await tenantSeries(metrics.registry);
    for (const name of [
      'tenantry_tenant_requests_total',
      'tenantry_tenant_request_errors_total',
      'tenantry_tenant_request_duration_seconds',
      'tenantry_tenant_db_seconds_total',
      'tenantry_tenant_db_statements_total',
      'tenantry_tenant_db_rows_total',
      'tenantry_tenant_rate_limited_total',
    ]) {
      expect(series[name], name).toBeDefined();
      expect(series[name]!.size, name).toBeLessThanOrEqual(K + 1);
      expect(series[name]!.has(OTHER_TENANTS), name).toBe(true);
    }
    expect(worst).toBe(K + 1);
    // after the shift, the new heavy tenants are the labelled ones, the old ones retired
    metrics.rotate();
    expect([...metrics.labeledTenants()].sort()).toEqual([...heavyOf(1)].sort());
    const requests = await tenantSeries(metrics.registry);
    for (const gone of heavyOf(0)) expect(requests['tenantry_tenant_requests_total']!.has(gone)).toBe(false);
  });

  it('counts every event once: the per-tenant series and other add up to the total', async () => {
    const metrics = new TenantMetrics({ topK: 3 });
    for (let i = 0; i < 1000; i++) metrics.recordRequest(`t${i % 50}`, 200, 0.001);
    const json = await metrics.registry.getSingleMetric('tenantry_tenant_requests_total')!.get();
    expect(json.values.reduce((sum, v) => sum + v.value, 0)).toBe(1000);
    expect(json.values).toHaveLength(4);
  });

  it('a retired tenant’s statements not yet collected count under other, not nowhere (try-out of issue 12)', async () => {
    const metrics = new TenantMetrics({ topK: 2 });
    const statements = async () =>
      (await metrics.registry.getSingleMetric('tenantry_tenant_db_statements_total')!.get()).values.reduce(
        (sum, v) => sum + v.value,
        0,
      );
    let recorded = 0;
    for (let round = 0; round < 6; round++) {
      // each round a different pair of tenants is the heaviest: the labelled ones change every rotation
      for (let i = 0; i < 40; i++) {
        metrics.recordStatement(`t${(round * 2 + (i % 2)) % 7}`, 0.01 * (1 + (i % 2)), 1);
        metrics.recordStatement(`t${(i % 5) + 7}`, 0.0001, 1);
        recorded += 2;
      }
      // no scrape in between: every count is still pending when its tenant is retired
      metrics.rotate();
    }
    expect(await statements()).toBe(recorded);
  });

  it('gives a new tenant its label at once while fewer than K are labelled', async () => {
    const metrics = new TenantMetrics({ topK: 2 });
    metrics.recordStatement('a', 0.01, 1);
    metrics.recordStatement('b', 0.01, 1);
    metrics.recordStatement('c', 0.5, 1);
    const text = await metrics.registry.metrics();
    expect(text).toContain('tenantry_tenant_db_statements_total{tenant="a"} 1');
    expect(text).toContain('tenantry_tenant_db_statements_total{tenant="b"} 1');
    expect(text).toContain('tenantry_tenant_db_statements_total{tenant="other"} 1');
    // c was the costliest: at the next choice it takes a label, the cheapest one leaves
    metrics.rotate();
    expect(metrics.labeledTenants().has('c')).toBe(true);
    expect(metrics.labeledTenants().size).toBe(2);
  });

  it('counts requests refused before a tenant was known apart, by status class only', async () => {
    const metrics = new TenantMetrics({ topK: 2 });
    metrics.recordRequest(undefined, 401, 0.002);
    metrics.recordRequest(undefined, 404, 0.002);
    const text = await metrics.registry.metrics();
    expect(text).toContain('tenantry_requests_without_tenant_total{status_class="4xx"} 2');
    expect(text).not.toMatch(/tenant_requests_total\{/);
  });

  it('refuses bad configuration at construction', () => {
    expect(() => new TenantMetrics({ topK: -1 })).toThrow(ConfigurationError);
    expect(() => new TenantMetrics({ topK: 1.5 })).toThrow(ConfigurationError);
    expect(() => new TenantMetrics({ windowMs: 10 })).toThrow(ConfigurationError);
    expect(() => new TenantMetrics({ prefix: 'bad-prefix' })).toThrow(ConfigurationError);
  });
});

describe('SpaceSaving', () => {
  it('always holds every key heavier than total / capacity, among many light ones', () => {
    const summary = new SpaceSaving(50);
    const next = random(7);
    let total = 0;
    for (let i = 0; i < 100_000; i++) {
      const key = i % 5 === 0 ? `heavy${(i / 5) % 3}` : `light${Math.floor(next() * 5000)}`;
      summary.add(key, 1);
      total++;
    }
    expect(summary.size).toBe(50);
    const top = summary.top(3).map((e) => e.key);
    expect(top.sort()).toEqual(['heavy0', 'heavy1', 'heavy2']);
    for (const e of summary.top(3)) expect(e.count).toBeGreaterThan(total / 50);
  });

  it('keeps its order through decay', () => {
    const summary = new SpaceSaving(3);
    summary.add('a', 5);
    summary.add('b', 3);
    summary.decay(0.5);
    summary.add('c', 2);
    expect(summary.top(3).map((e) => [e.key, e.count])).toEqual([
      ['a', 2.5],
      ['c', 2],
      ['b', 1.5],
    ]);
  });
});
