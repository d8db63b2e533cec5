import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageRecorder } from '../../src/metering/index.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

let f: AppFixture;
let usage: UsageRecorder;
const range = () => {
  const from = new Date(Date.now() - 3600_000).toISOString();
  const to = new Date(Date.now() + 3600_000).toISOString();
  return `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
};

beforeAll(async () => {
  f = await createAppFixture({
    // a long interval: a request's metering must be durable when its answer arrives, not at a flush
    usage: (db) => (usage = new UsageRecorder({ pool: db.owner, flushIntervalMs: 60_000 })),
  });
});
afterAll(async () => {
  await usage?.close();
  await f?.close();
});

type Item = { meter: string; subject: string | null; quantity: number };
const of = (items: Item[], meter: string) => items.filter((i) => i.meter === meter).reduce((s, i) => s + i.quantity, 0);

describe('a request answered is a request metered', () => {
  it('each request is in tenantry.usage_events when its response arrives (nothing to lose in a crash after it)', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const metered = async () =>
      (
        await f.db.owner.query<{ n: number }>(
          `select count(*)::int as n from tenantry.usage_events where tenant_id = $1 and meter = 'requests'`,
          [f.a.id],
        )
      ).rows[0]!.n;
    const before = await metered();
    for (let i = 1; i <= 3; i++) {
      const r = await f.call('GET', '/recordings', { token: alice });
      expect(r.statusCode).toBe(200);
      expect(await metered()).toBe(before + i);
    }
    // concurrent requests: one group-committed write, each counted once
    const many = await Promise.all(Array.from({ length: 10 }, () => f.call('GET', '/recordings', { token: alice })));
    expect(many.every((r) => r.statusCode === 200)).toBe(true);
    expect(await metered()).toBe(before + 13);
  });
});

describe('one tenant cannot queue the others behind its usage reads', () => {
  it('one read at a time per tenant: the rest 429 with Retry-After, another tenant is served meanwhile', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const carol = await f.token(f.users.carol, f.b);
    const [burst, other] = await Promise.all([
      Promise.all(
        Array.from({ length: 8 }, () =>
          f.call('GET', `/usage?${range()}&granularity=hour&byTable=true`, { token: alice }),
        ),
      ),
      f.call('GET', `/usage?${range()}`, { token: carol }),
    ]);
    expect(other.statusCode, other.body).toBe(200);
    const statuses = burst.map((r) => r.statusCode);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(statuses).toContain(200);
    expect(statuses).toContain(429);
    for (const r of burst.filter((x) => x.statusCode === 429)) {
      expect(r.headers['retry-after']).toBe('1');
      expect(r.json().error.code).toBe('RATE_LIMITED');
    }
    // and once the first is done, the next read is served
    expect((await f.call('GET', `/usage?${range()}`, { token: alice })).statusCode).toBe(200);
  });
});

describe('GET /usage and /usage/events', () => {
  it('meters a tenant’s requests and rows written; its admins read them, members do not', async () => {
    const alice = await f.token(f.users.alice, f.a);
    for (let i = 0; i < 3; i++) {
      const r = await f.call('POST', '/recordings', {
        token: alice,
        payload: { title: `t${i}`, durationSeconds: 1, mimeType: 'audio/ogg' },
      });
      expect(r.statusCode).toBe(201);
    }
    await usage.flush();
    const res = await f.call('GET', `/usage?${range()}&byTable=true`, { token: alice });
    expect(res.statusCode, res.body).toBe(200);
    const items = res.json().items as Item[];
    expect(of(items, 'requests')).toBeGreaterThanOrEqual(3);
    expect(items.find((i) => i.meter === 'rows_written' && i.subject === 'public.recordings')?.quantity).toBe(3);
    const bob = await f.token(f.users.bob, f.a);
    const refused = await f.call('GET', `/usage?${range()}`, { token: bob });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('FORBIDDEN');
  });

  it('another tenant’s owner sees only its own usage, and cannot name alpha', async () => {
    const carol = await f.token(f.users.carol, f.b);
    const own = await f.call('GET', `/usage?${range()}`, { token: carol });
    expect(own.statusCode).toBe(200);
    expect(of(own.json().items as Item[], 'rows_written')).toBe(0);
    const named = await f.call('GET', `/usage?${range()}`, { token: carol, headers: { 'x-tenant': 'alpha' } });
    expect(named.statusCode).toBeGreaterThanOrEqual(400);
    expect(named.statusCode).toBeLessThan(500);
    const smuggled = await f.call('GET', `/usage?${range()}&tenantId=${f.a.id}`, { token: carol });
    expect(smuggled.statusCode).toBe(400);
    const events = await f.call('GET', `/usage/events?${range()}`, { token: carol });
    expect(events.statusCode).toBe(200);
    const lines =
      events.body.trim() === ''
        ? []
        : events.body
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as { subject: string });
    expect(lines.every((e) => e.subject === f.b.id)).toBe(true);
  });

  it('exports the tenant’s CloudEvents as NDJSON', async () => {
    const alice = await f.token(f.users.alice, f.a);
    const res = await f.call('GET', `/usage/events?${range()}`, { token: alice });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-ndjson');
    const events = res.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { specversion: string; subject: string; type: string });
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.specversion === '1.0' && e.subject === f.a.id)).toBe(true);
    expect(events.some((e) => e.type === 'tenantry.usage.rows_written')).toBe(true);
  });

  it('staff read a tenant’s usage under a grant only', async () => {
    const staff = await f.staffToken();
    const before = await f.call('GET', `/usage?${range()}`, { token: staff, headers: { 'x-tenant': 'alpha' } });
    expect(before.statusCode).toBe(403);
    const grant = await f.call('POST', '/staff/access', {
      token: staff,
      payload: { tenant: 'alpha', reason: 'Ticket 4712: invoice disputed, checking usage', minutes: 10 },
    });
    expect(grant.statusCode).toBe(201);
    const res = await f.call('GET', `/usage?${range()}`, { token: staff, headers: { 'x-tenant': 'alpha' } });
    expect(res.statusCode).toBe(200);
    expect(of(res.json().items as Item[], 'rows_written')).toBe(3);
  });

  it('bad input is a 400 with a code, never a 5xx', async () => {
    const alice = await f.token(f.users.alice, f.a);
    for (const q of [
      '',
      'from=yesterday&to=today',
      'from=2026-12-02&to=2026-12-01',
      'from=2020-01-01&to=2026-01-01&granularity=hour',
      'from=2026-01-01&to=2026-02-01&granularity=minute',
      'from=2026-01-01T00:00:00Z&to=9999-99-99',
    ]) {
      const r = await f.call('GET', `/usage?${q}`, { token: alice });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.code, q).toBe('VALIDATION_FAILED');
    }
    const wide = await f.call('GET', '/usage/events?from=2026-01-01&to=2026-06-01', { token: alice });
    expect(wide.statusCode).toBe(400);
  });

  it('refuses a date that is not on the calendar instead of rolling it over', async () => {
    const alice = await f.token(f.users.alice, f.a);
    for (const q of [
      'from=2026-02-30&to=2026-03-10',
      'from=2026-02-01&to=2026-04-31T00:00:00Z',
      'from=2025-02-29&to=2025-03-10',
    ]) {
      const r = await f.call('GET', `/usage?${q}`, { token: alice });
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.code, q).toBe('VALIDATION_FAILED');
      expect(r.body, q).toContain('not a date on the calendar');
    }
    // a leap day is one
    expect((await f.call('GET', '/usage?from=2028-02-29&to=2028-03-01', { token: alice })).statusCode).toBe(200);
  });
});
