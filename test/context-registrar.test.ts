// The pool's side of remembered proofs (core 009): which values it registers, when, and in what
// batches. No database here: the registration is a function this file records (what reaches
// PostgreSQL, and what the database then remembers, is test/isolation/remembered-proofs.test.ts).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ContextRegistrar } from '../src/data/context-registrar.js';

const expiry = () => Math.floor(Date.now() / 1000) + 300;
let n = 0;
/** A value of the signed form (only its second part, the expiry, is read here). */
const value = () => `${String(++n).padStart(8, '0')}-0000-4000-8000-000000000000.${expiry()}.${'a'.repeat(64)}`;

function registrar(outcome: (values: string[]) => Promise<number | null> = async (v) => v.length) {
  const calls: string[][] = [];
  const stops: unknown[] = [];
  const r = new ContextRegistrar();
  r.attach(
    (values) => {
      calls.push([...values]);
      return outcome(values);
    },
    (error) => stops.push(error),
  );
  return { r, calls, stops };
}
const use = (r: ContextRegistrar, v: string, times: number) => {
  for (let i = 0; i < times; i++) r.note(v);
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('ContextRegistrar', () => {
  it('registers a value at its 3rd use within a minute, once; not one used twice, nor uses spread wider', async () => {
    const { r, calls } = registrar();
    const [thrice, twice, spread] = [value(), value(), value()];
    use(r, thrice, 5);
    use(r, twice, 2);
    use(r, spread, 2);
    await vi.advanceTimersByTimeAsync(61_000);
    use(r, spread, 1); // the 3rd use, 61 s after the 1st: counting starts again
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toEqual([[thrice]]);
    use(r, spread, 2); // 3 uses within a minute of the new count
    use(r, thrice, 10); // registered already: not again
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toEqual([[thrice], [spread]]);
  });

  it('waits up to 100 ms for values to go together, sends 64 at once, one batch at a time', async () => {
    let release: (() => void) | undefined;
    const { r, calls } = registrar(
      (values) =>
        new Promise((resolve) => {
          release = () => resolve(values.length);
        }),
    );
    const values = Array.from({ length: 140 }, value);
    use(r, values[0]!, 3);
    await vi.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(0);
    for (const v of values.slice(1, 10)) use(r, v, 3);
    await vi.advanceTimersByTimeAsync(60);
    expect(calls).toEqual([values.slice(0, 10)]);
    // while that one is out, 130 more are queued: nothing else goes until it ends
    for (const v of values.slice(10)) use(r, v, 3);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(1);
    release!();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls[1]).toEqual(values.slice(10, 74));
    release!();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls[2]).toEqual(values.slice(74, 138));
    release!();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(3); // 2 left: they wait for company
    await vi.advanceTimersByTimeAsync(100);
    expect(calls[3]).toEqual(values.slice(138));
  });

  it('stops on "never here" (null) and on 42883/42501 (telling the pool once); goes on after any other error', async () => {
    const never = registrar(async () => null);
    use(never.r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    use(never.r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    expect(never.calls).toHaveLength(1);
    expect(never.stops).toHaveLength(0);

    for (const code of ['42883', '42501']) {
      const refused = registrar(async () => {
        throw Object.assign(new Error('refused'), { code });
      });
      use(refused.r, value(), 3);
      await vi.advanceTimersByTimeAsync(200);
      use(refused.r, value(), 3);
      await vi.advanceTimersByTimeAsync(200);
      expect(refused.calls).toHaveLength(1);
      expect(refused.stops).toHaveLength(1);
    }

    const flaky = registrar(async () => {
      throw Object.assign(new Error('timeout'), { code: '57014' });
    });
    use(flaky.r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    use(flaky.r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    expect(flaky.calls).toHaveLength(2);
    expect(flaky.stops).toHaveLength(0);
  });

  it('a session that would not register (-1) is told once and does not stop the registrations; nor does a throwing logger', async () => {
    const calls: string[][] = [];
    let told = 0;
    let answer = -1;
    const r = new ContextRegistrar();
    r.attach(
      async (values) => {
        calls.push(values);
        return answer;
      },
      () => undefined,
      () => {
        told++;
        throw new Error('logger down');
      },
    );
    for (let round = 0; round < 3; round++) {
      use(r, value(), 3);
      await vi.advanceTimersByTimeAsync(200);
    }
    expect(calls).toHaveLength(3);
    expect(told).toBe(1);
    answer = 1; // another connection can (a failover, another host): still asked
    use(r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(4);
    expect(told).toBe(1);
  });

  it('a logger that throws when told of the stop changes nothing', async () => {
    const r = new ContextRegistrar();
    const calls: string[][] = [];
    r.attach(
      async (values) => {
        calls.push(values);
        throw Object.assign(new Error('no function'), { code: '42883' });
      },
      () => {
        throw new Error('logger down');
      },
    );
    use(r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    use(r, value(), 3);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(1);
  });

  it('close() drops what is queued and what waits: nothing goes after it', async () => {
    const { r, calls } = registrar();
    use(r, value(), 3);
    r.close();
    await vi.advanceTimersByTimeAsync(1_000);
    use(r, value(), 3);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(0);
  });

  it('remembers at most 50,000 values: those done with (first used over two minutes ago) are dropped; while none is, a new value is not counted', async () => {
    const { r, calls } = registrar();
    const old = Array.from({ length: 49_999 }, value);
    for (const v of old) r.note(v);
    const hot = value();
    use(r, hot, 3); // registered
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([[hot]]);
    // full of values first used just now: a new one is not counted (nothing forgotten, nothing sent again)
    const unseen = value();
    use(r, unseen, 5);
    use(r, hot, 5);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([[hot]]);
    await vi.advanceTimersByTimeAsync(121_000);
    // now the old ones are done with: the next new value makes room
    const fresh = value();
    use(r, fresh, 3);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([[hot], [fresh]]);
    // an old value seen again counts from 1
    use(r, old[0]!, 2);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(2);
    use(r, old[0]!, 1);
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toEqual([[hot], [fresh], [old[0]]]);
  });
});
