// The routed pool's slots (src/tiers/semaphore.ts, hand-written since issue 15): a bound, waiters
// served in arrival order, every wait ending at its deadline or its signal, and a slot released to a
// waiter that gave up passed on to the next.
import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/tiers/semaphore.js';

const timeout = () => new Error('timed out');
const later = (ms: number) => Date.now() + ms;

describe('Semaphore', () => {
  it('holds at most size slots; tryAcquire takes a free one synchronously', () => {
    const s = new Semaphore(2);
    expect(s.idle).toBe(true);
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(true);
    expect(s.tryAcquire()).toBe(false);
    expect(s.inUse).toBe(2);
    s.release();
    s.release();
    expect(s.idle).toBe(true);
    expect(s.inUse).toBe(0);
  });

  it('hands a released slot to the first waiter, in arrival order; a free slot means nobody waits', async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const order: number[] = [];
    const waits = [1, 2, 3].map((n) => s.acquire(later(1000), timeout).then(() => order.push(n)));
    expect(s.tryAcquire()).toBe(false);
    s.release();
    await waits[0];
    expect(s.tryAcquire()).toBe(false); // handed over, not freed
    s.release();
    await waits[1];
    s.release();
    await waits[2];
    expect(order).toEqual([1, 2, 3]);
    expect(s.inUse).toBe(1);
    s.release();
    expect(s.idle).toBe(true);
  });

  it('a wait ends at its deadline, and its slot goes to the next waiter instead', async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const first = s.acquire(later(20), timeout);
    const second = s.acquire(later(1000), timeout);
    await expect(first).rejects.toThrow('timed out');
    s.release();
    await expect(second).resolves.toBeUndefined();
    expect(s.inUse).toBe(1);
    s.release();
    expect(s.idle).toBe(true);
  });

  it('a wait ends when its signal aborts; a deadline already past and an aborted signal refuse at once', async () => {
    const s = new Semaphore(1);
    s.tryAcquire();
    const controller = new AbortController();
    const waiting = s.acquire(later(1000), timeout, controller.signal);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'REQUEST_ABORTED' });
    await expect(s.acquire(Date.now() - 1, timeout)).rejects.toThrow('timed out');
    await expect(s.acquire(later(1000), timeout, controller.signal)).rejects.toMatchObject({
      code: 'REQUEST_ABORTED',
    });
    s.release(); // nobody live waits: the slot is free again
    expect(s.idle).toBe(true);
    expect(s.tryAcquire()).toBe(true);
  });
});
