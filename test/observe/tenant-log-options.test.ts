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
