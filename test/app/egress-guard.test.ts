import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPublicAddress, mayBePublic, publicOnlyFetch } from '../../app/plugins/egress-guard.js';

// Webhook URLs are chosen by tenants: the server must not become their way into its own network.
let receiver: Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  receiver = createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
});
afterAll(async () => {
  receiver.closeAllConnections();
  await new Promise((resolve) => receiver.close(resolve));
});

describe('publicOnlyFetch', () => {
  it('classifies addresses: only public unicast passes', () => {
    for (const a of ['93.184.216.34', '2606:4700:4700::1111', '8.8.8.8']) expect(isPublicAddress(a), a).toBe(true);
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fc00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      '2002:7f00:1::1',
      '224.0.0.1',
      '::7f00:1',
      '::a9fe:a9fe',
      '64:ff9b::7f00:1',
      'not an address',
    ])
      expect(isPublicAddress(a), a).toBe(false);
  });

  it('refuses loopback by literal, by bracketed IPv6, by an IPv4-mapped literal and by name, without connecting', async () => {
    const guarded = publicOnlyFetch();
    for (const url of [
      `http://127.0.0.1:${port}/hook`,
      `http://[::1]:${port}/hook`,
      `http://[::ffff:127.0.0.1]:${port}/hook`,
      `http://localhost:${port}/hook`,
      `http://0x7f000001:${port}/hook`,
    ]) {
      const error = await guarded(url, { method: 'POST', body: '{}' }).then(
        () => null,
        (e: unknown) => e as { code?: string; cause?: { code?: string } },
      );
      expect(error, url).not.toBeNull();
      expect(error?.code ?? error?.cause?.code, url).toBe('EGRESS_REFUSED');
    }
    expect(hits).toBe(0);
  });

  it('refuses at registration what needs no lookup: non-public literals and localhost names', () => {
    for (const url of [
      'http://127.0.0.1/x',
      'http://2130706433/x',
      'http://127.1/x',
      'http://0x7f000001/x',
      'http://[::1]/x',
      'http://[::169.254.169.254]/x',
      'http://localhost/x',
      'http://LOCALHOST./x',
      'http://foo.localhost/x',
      'http://169.254.169.254/latest/meta-data',
    ])
      expect(mayBePublic(new URL(url)), url).toBe(false);
    for (const url of ['https://hooks.example.com/x', 'https://93.184.216.34/x'])
      expect(mayBePublic(new URL(url)), url).toBe(true);
  });

  it('with allowPrivate (local development) it reaches the receiver', async () => {
    const plain = publicOnlyFetch({ allowPrivate: true });
    const answer = await plain(`http://127.0.0.1:${port}/hook`, { method: 'POST', body: '{}' });
    expect(answer.status).toBe(200);
    expect(hits).toBe(1);
  });
});
