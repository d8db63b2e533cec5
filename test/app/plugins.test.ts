import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TenantJobs } from '../../src/jobs/index.js';
import { PluginAdmin, PluginHost } from '../../src/plugins/index.js';
import { SettingsFeed } from '../../src/settings/index.js';
import { createLogger } from '../../app/logger.js';
import { createPlugins } from '../../app/plugins/registry.js';
import { verifyWebhook } from '../../app/plugins/webhook-signature.js';
import { eventually, testJobs } from '../jobs/support/jobs-harness.js';
import { within } from '../settings/support.js';
import { createAppFixture, type AppFixture } from './support/app-fixture.js';

// The reference server's two sample plugins behind its real tenant scope (tokens, memberships).
let f: AppFixture;
let admin: PluginAdmin;
let host: PluginHost;
let feed: SettingsFeed;
let jobs: TenantJobs;
let receiver: Server;
let receiverUrl: string;
const received: { headers: IncomingMessage['headers']; body: string }[] = [];
/** What the receiver answers next (then 200); 0: no answer at all (the request hangs). */
const answers: number[] = [];
const lines: string[] = [];
const who = { actor: 'staff:test', reason: 'plugin test' };
let alice: string; // owner of a
let carol: string; // owner of b

const rows = async (table: string) =>
  (await f.db.admin.query(`select * from ${table} order by tenant_id, created_at, id`)).rows;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      const status = answers.shift() ?? 200;
      if (status === 0) return; // hangs: the sender's timeout must end the attempt
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  f = await createAppFixture({
    logger,
    plugins: async (db, serverPool) => {
      // an attempt waits at most 300 ms here (the setting webhooks.timeoutMs; 5 s by default)
      const registry = createPlugins({
        dataPool: () => serverPool,
        setting: async (key) => (key === 'webhooks.timeoutMs' ? 300 : undefined),
        // the receiver is on 127.0.0.1 (the egress guard itself: egress-guard.test.ts)
        allowPrivateEgress: true,
      });
      feed = new SettingsFeed({ connectionString: db.ownerUrl });
      await feed.start();
      ({ jobs } = testJobs(db));
      host = new PluginHost({ registry, db: db.owner, feed, jobs });
      admin = new PluginAdmin({ registry, db: db.owner });
      await jobs.start();
      await jobs.work({ concurrency: 1 });
      return host;
    },
  });
  alice = await f.token(f.users.alice, f.a);
  carol = await f.token(f.users.carol, f.b);
  await admin.enable(f.a.id, 'transcripts', who);
  await admin.enable(f.b.id, 'transcripts', who);
  await admin.enable(f.a.id, 'webhooks', who);
});

afterAll(async () => {
  await jobs?.stop();
  host?.close();
  await feed?.close();
  await f?.close();
  receiver?.closeAllConnections();
  await new Promise((resolve) => receiver?.close(resolve));
});

describe('recording transcripts (plugin)', () => {
  let recording: string;

  it('adds and reads segments; a new recording is transcribed by the job', async () => {
    const made = await f.call('POST', '/recordings', {
      token: alice,
      payload: { title: 'Weekly sync', durationSeconds: 60, mimeType: 'audio/ogg' },
    });
    expect(made.statusCode).toBe(201);
    recording = made.json().id;
    await eventually(async () => {
      const got = await f.call('GET', `/recordings/${recording}/transcript`, { token: alice });
      return got.json().segments?.some((s: { source: string }) => s.source === 'auto');
    });
    const added = await f.call('POST', `/recordings/${recording}/transcript`, {
      token: alice,
      payload: { text: 'Hello everyone' },
    });
    expect(added.statusCode).toBe(201);
    const got = (await f.call('GET', `/recordings/${recording}/transcript`, { token: alice })).json();
    expect(got.segments.map((s: { source: string }) => s.source)).toEqual(['auto', 'manual']);
    expect(got.segments[0].text).toContain('Weekly sync');
    // bad input is a 400, never a 5xx
    const bad = await f.call('POST', `/recordings/${recording}/transcript`, { token: alice, payload: { text: '' } });
    expect(bad.statusCode).toBe(400);
  });

  it("tenant B (plugin enabled) cannot read or add to tenant A's transcript: 404, nothing changed", async () => {
    const before = await rows('transcripts');
    const read = await f.call('GET', `/recordings/${recording}/transcript`, { token: carol });
    const write = await f.call('POST', `/recordings/${recording}/transcript`, {
      token: carol,
      payload: { text: 'planted by B' },
    });
    expect(read.statusCode).toBe(404);
    expect(write.statusCode).toBe(404);
    expect(await rows('transcripts')).toEqual(before);
  });

  it('a tenant without the plugin gets the 404 of an unknown route; its new recordings are not transcribed', async () => {
    await admin.disable(f.b.id, 'transcripts', who);
    await within(1000, () => host.isEnabled(f.b.id, 'transcripts'), false);
    const before = await rows('transcripts');
    const off = await f.call('GET', `/recordings/${recording}/transcript`, { token: carol });
    const unknown = await f.call('GET', `/recordings/${recording}/no-such-route`, { token: carol });
    expect(off.statusCode).toBe(404);
    // byte for byte the answer of a route that does not exist
    expect(off.body).toBe(unknown.body);
    expect(off.json().error.code).toBe('ROUTE_NOT_FOUND');
    const post = await f.call('POST', `/recordings/${recording}/transcript`, { token: carol, payload: { text: 'x' } });
    expect(post.statusCode).toBe(404);
    const mine = await f.call('POST', '/recordings', {
      token: carol,
      payload: { title: 'B only', durationSeconds: 5, mimeType: 'audio/ogg' },
    });
    expect(mine.statusCode).toBe(201);
    await new Promise((r) => setTimeout(r, 500));
    expect(await rows('transcripts')).toEqual(before);
  });
});

describe('outgoing webhooks (plugin)', () => {
  let secret: string;

  it('registers an endpoint (the secret shown once) and delivers signed events, retrying a failure', async () => {
    const made = await f.call('POST', '/webhooks/endpoints', {
      token: alice,
      payload: { url: receiverUrl, events: ['recording.created'] },
    });
    expect(made.statusCode).toBe(201);
    secret = made.json().secret;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await f.call('GET', '/webhooks/endpoints', { token: alice });
    expect(JSON.stringify(listed.json())).not.toContain(secret);
    answers.push(500); // the first attempt fails, the retry succeeds
    const rec = await f.call('POST', '/recordings', {
      token: alice,
      payload: { title: 'Hooked', durationSeconds: 5, mimeType: 'audio/ogg' },
    });
    await eventually(() => received.length >= 2, 20_000);
    const [first, second] = received;
    expect(first!.body).toBe(second!.body);
    expect(JSON.parse(second!.body)).toMatchObject({ type: 'recording.created', data: { recordingId: rec.json().id } });
    const headers = (h: IncomingMessage['headers']) => ({
      timestamp: h['webhook-timestamp'] as string,
      signature: h['webhook-signature'] as string,
    });
    expect(verifyWebhook(secret, headers(second!.headers), second!.body)).toBe(true);
    expect(verifyWebhook(secret, headers(second!.headers), second!.body + ' ')).toBe(false);
    expect(verifyWebhook('another-tenants-secret-another-tenants', headers(second!.headers), second!.body)).toBe(false);
    await eventually(async () => {
      const d = (await f.call('GET', '/webhooks/deliveries', { token: alice })).json().items[0];
      return d?.status === 'delivered' && d.attempts === 2;
    });
    // the secret is in no log line
    expect(lines.join('\n')).not.toContain(secret);
  });

  it('an attempt the receiver never answers ends at the timeout and is retried', async () => {
    const count = received.length;
    answers.push(0);
    const started = Date.now();
    const rec = await f.call('POST', '/recordings', {
      token: alice,
      payload: { title: 'Slow receiver', durationSeconds: 5, mimeType: 'audio/ogg' },
    });
    expect(rec.statusCode).toBe(201);
    await eventually(async () => {
      const d = (await f.call('GET', '/webhooks/deliveries', { token: alice })).json().items[0];
      return d?.status === 'delivered' && d.attempts === 2 && d.lastStatus === 200;
    }, 20_000);
    expect(received.length).toBe(count + 2);
    // one hung attempt (≤ 300 ms), the retry delay (2 s), the second attempt: far below the 5 s default
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('tenant B (plugin off) gets 404 for every webhook route; its recordings deliver nothing; A unchanged', async () => {
    const before = { endpoints: await rows('webhook_endpoints'), deliveries: await rows('webhook_deliveries') };
    const count = received.length;
    for (const [method, url] of [
      ['GET', '/webhooks/endpoints'],
      ['POST', '/webhooks/endpoints'],
      ['POST', '/webhooks/secret'],
      ['GET', '/webhooks/deliveries'],
    ] as const) {
      const res = await f.call(method, url, {
        token: carol,
        ...(method === 'POST' ? { payload: { url: receiverUrl, events: ['recording.created'] } } : {}),
      });
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    await f.call('POST', '/recordings', {
      token: carol,
      payload: { title: 'B again', durationSeconds: 5, mimeType: 'audio/ogg' },
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(received.length).toBe(count);
    expect({ endpoints: await rows('webhook_endpoints'), deliveries: await rows('webhook_deliveries') }).toEqual(
      before,
    );
  });

  it("tenant B with the plugin cannot see or delete A's endpoints, nor learn A's secret", async () => {
    await admin.enable(f.b.id, 'webhooks', who);
    await within(1000, () => host.isEnabled(f.b.id, 'webhooks'), true);
    const before = await rows('webhook_endpoints');
    const aEndpoint = before.find((r) => r.tenant_id === f.a.id)!.id as string;
    expect((await f.call('GET', '/webhooks/endpoints', { token: carol })).json().items).toEqual([]);
    expect((await f.call('DELETE', `/webhooks/endpoints/${aEndpoint}`, { token: carol })).statusCode).toBe(404);
    const own = await f.call('POST', '/webhooks/secret', { token: carol });
    expect(own.json().secret).not.toBe(secret);
    expect((await f.call('GET', '/webhooks/deliveries', { token: carol })).json().items).toEqual([]);
    expect((await rows('webhook_endpoints')).filter((r) => r.tenant_id === f.a.id)).toEqual(
      before.filter((r) => r.tenant_id === f.a.id),
    );
  });
});
