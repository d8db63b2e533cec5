import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { runAs } from '../../src/index.js';
import { runWithLogContext, tagRequestLogger, tenantLogOptions } from '../../src/observe/index.js';

function capture(options = tenantLogOptions()) {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const logger = pino(
    { ...options, level: 'trace' },
    {
      write(s: string) {
        raw.push(s);
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, raw };
}

describe('tenantLogOptions: tenant_id from the context', () => {
  it('a line inside runAs carries tenant_id; outside it does not', async () => {
    const { logger, lines } = capture();
    const tenant = randomUUID();
    logger.info('before');
    await runAs(tenant, async () => {
      await sleep(1);
      logger.info({ step: 1 }, 'inside');
      logger.child({ component: 'x' }).warn('child inside');
    });
    logger.info('after');
    expect(lines.map((l) => [l.msg, l.tenant_id])).toEqual([
      ['before', undefined],
      ['inside', tenant],
      ['child inside', tenant],
      ['after', undefined],
    ]);
  });

  it('concurrent tenants interleaved: each line names its own tenant', async () => {
    const { logger, lines } = capture();
    const tenants = Array.from({ length: 8 }, () => randomUUID());
    await Promise.all(
      tenants.map((tenant, i) =>
        runAs(tenant, async () => {
          for (let step = 0; step < 5; step++) {
            await sleep((i * 7 + step * 3) % 5);
            logger.info({ who: tenant, step }, 'work');
          }
        }),
      ),
    );
    expect(lines).toHaveLength(40);
    for (const line of lines) expect(line.tenant_id).toBe(line.who);
    // they did interleave
    expect(new Set(lines.slice(0, 8).map((l) => l.who)).size).toBeGreaterThan(1);
  });

  it('request id and actor from the log context; a tagged request logger names its tenant outside runAs', async () => {
    const { logger, lines } = capture();
    const tenant = randomUUID();
    await runAs(tenant, () =>
      runWithLogContext({ requestId: 'req-7', actor: 'user:u1' }, async () => {
        await sleep(1);
        logger.info('handled');
      }),
    );
    const requestLog = logger.child({ reqId: 'req-8' });
    tagRequestLogger(requestLog, { requestId: 'req-8', actor: 'apiKey:k1', tenantId: tenant });
    requestLog.info('request completed');
    logger.info('unrelated');
    expect(lines[0]).toMatchObject({ tenant_id: tenant, request_id: 'req-7', actor: 'user:u1', msg: 'handled' });
    expect(lines[1]).toMatchObject({ tenant_id: tenant, request_id: 'req-8', actor: 'apiKey:k1' });
    expect(lines[2]!.tenant_id).toBeUndefined();
  });

  it('scrubs the serialized line by default (message, fields, errors); scrub: false leaves it', () => {
    const { logger, raw } = capture();
    logger.error(
      { err: new Error('no user bob@example.com'), url: '/x?card=4111111111111111' },
      'for +44 20 7946 0958',
    );
    expect(raw.join('')).not.toMatch(/bob@example|4111111111111111|7946/);
    expect(JSON.parse(raw[0]!)).toMatchObject({ url: '/x?card=[card]', msg: 'for [phone]' });
    const plain = capture(tenantLogOptions({ scrub: false }));
    plain.logger.info('bob@example.com');
    expect(plain.raw[0]).toContain('bob@example.com');
  });
});

describe('tenantLogOptions(userOptions): merged with your own pino options', () => {
  it("keeps the user's hooks, mixin and serializers, and adds the tenant and the scrubbing", async () => {
    const called: string[] = [];
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      tenantLogOptions({
        level: 'debug',
        hooks: {
          logMethod(args, method) {
            called.push('logMethod');
            method.apply(this, args);
          },
          // the user's own rewrite of the line runs first; what it adds is scrubbed too
          streamWrite: (line: string) => line.replace('"msg":', '"note":"by bob@example.com","msg":'),
        },
        mixin: () => ({ service: 'api', tenant_id: 'spoofed' }),
        serializers: { user: (u: { id: string; email: string }) => ({ id: u.id }) },
      }),
      { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    const tenant = randomUUID();
    await runAs(tenant, async () =>
      logger.debug({ user: { id: 'u1', email: 'alice@example.com' } }, 'mail to carol@example.com'),
    );
    expect(called).toEqual(['logMethod']);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({ service: 'api', tenant_id: tenant, user: { id: 'u1' }, note: 'by [email]' });
    expect(line!.msg).toBe('mail to [email]');
    expect(JSON.stringify(line)).not.toContain('example.com');
  });

  it('scrub: false keeps only the user streamWrite; no user options still works as before', () => {
    const opts = tenantLogOptions({ scrub: false, hooks: { streamWrite: (l: string) => l } });
    expect(opts.hooks?.streamWrite?.('x')).toBe('x');
    expect(tenantLogOptions({ scrub: false }).hooks).toBeUndefined();
    expect(typeof tenantLogOptions().hooks?.streamWrite).toBe('function');
  });
});

describe('tenantLogOptions: the context owns tenant_id, request_id and actor', () => {
  const count = (raw: string, key: string): number => raw.split(`"${key}":`).length - 1;

  it('inside runAs, a logged object cannot name another tenant or actor (its values go to claimed_*)', async () => {
    const { logger, lines, raw } = capture();
    const tenant = randomUUID();
    const other = randomUUID();
    await runAs(tenant, () =>
      runWithLogContext({ requestId: 'req-1', actor: 'user:u1' }, async () => {
        logger.info({ tenant_id: other, actor: 'user:evil', request_id: 'req-x', rows: 3 }, 'x');
        logger.info({ tenant_id: tenant, rows: 4 }, 'same'); // the same value: nothing to claim
      }),
    );
    expect(lines[0]).toMatchObject({
      tenant_id: tenant,
      actor: 'user:u1',
      request_id: 'req-1',
      claimed_tenant_id: other,
      claimed_actor: 'user:evil',
      claimed_request_id: 'req-x',
      rows: 3,
    });
    expect(lines[1]).toMatchObject({ tenant_id: tenant, rows: 4 });
    expect(lines[1]).not.toHaveProperty('claimed_tenant_id');
    for (const line of raw)
      for (const key of ['tenant_id', 'actor', 'request_id']) expect(count(line, key)).toBeLessThanOrEqual(1);
    // the context's fields come first in the line
    expect(raw[0]!.indexOf('"tenant_id":')).toBeLessThan(raw[0]!.indexOf('"rows":'));
  });

  it("a child's bindings cannot add a second tenant_id: exactly one, the context's", async () => {
    const { logger, lines, raw } = capture();
    const tenant = randomUUID();
    const other = randomUUID();
    const child = logger.child({ tenant_id: other, actor: 'user:evil', component: 'export' });
    const grandchild = child.child({ step: 2 });
    await runAs(tenant, async () => {
      child.info('in child');
      grandchild.info({ tenant_id: other }, 'in grandchild');
    });
    child.info('outside');
    expect(raw).toHaveLength(3);
    for (const line of raw) expect(count(line, 'tenant_id')).toBe(line.includes('"msg":"outside"') ? 0 : 1);
    expect(lines[0]).toMatchObject({
      tenant_id: tenant,
      claimed_tenant_id: other,
      claimed_actor: 'user:evil',
      component: 'export',
    });
    expect(lines[0]).not.toHaveProperty('actor');
    expect(lines[1]).toMatchObject({ tenant_id: tenant, claimed_tenant_id: other, step: 2 });
    expect(count(raw[1]!, 'claimed_tenant_id')).toBe(2); // the binding's and the call's, both the caller's
    // outside any context the caller's value is never presented as the context's
    expect(lines[2]).toMatchObject({ claimed_tenant_id: other, msg: 'outside' });
    expect(lines[2]).not.toHaveProperty('tenant_id');
  });

  it('outside any context a logged tenant_id is kept only as claimed_tenant_id; nested keys are left alone', () => {
    const { logger, lines, raw } = capture();
    const other = randomUUID();
    logger.info({ tenant_id: other, body: { tenant_id: 'nested', actor: 'a' } }, 'no context');
    logger.child({ meta: { tenant_id: 'nested' } }).info('nested binding');
    expect(lines[0]).toMatchObject({ claimed_tenant_id: other, body: { tenant_id: 'nested', actor: 'a' } });
    expect(lines[0]).not.toHaveProperty('tenant_id');
    expect(lines[1]).toMatchObject({ meta: { tenant_id: 'nested' } });
    expect(raw[1]).toContain('"meta":{"tenant_id":"nested"}');
  });

  it("keeps the user's own mixinMergeStrategy, onChild and base, the context still winning", async () => {
    const children: string[] = [];
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      tenantLogOptions({
        base: { service: 'api', tenant_id: 'from-base' },
        mixin: () => ({ source: 'mixin', tenant_id: 'from-mixin' }),
        mixinMergeStrategy: (mergeObject, mixinObject) => ({ ...mergeObject, ...mixinObject }), // mixin wins
        onChild: (child) => void children.push(String(child.bindings().component)),
      }),
      { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    const tenant = randomUUID();
    await runAs(tenant, async () => logger.child({ component: 'c1' }).info({ source: 'call' }, 'x'));
    expect(children).toEqual(['c1']);
    expect(lines[0]).toMatchObject({
      service: 'api',
      claimed_tenant_id: 'from-mixin',
      tenant_id: tenant,
      source: 'mixin',
      component: 'c1',
    });
  });
});
