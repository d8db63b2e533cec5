// RoutedTenantPool's slots per database and per tenant (src/tiers/checkout-slots.ts): kept while
// idle (a statement of a tenant seen before allocates nothing), swept only past a bound, and never
// one that someone holds or waits for, so the bounds hold across a sweep.
import { describe, expect, it } from 'vitest';
import { CheckoutSlots, LOCATION_SWEEP_MIN, TENANT_SWEEP_MIN } from '../../src/tiers/checkout-slots.js';

const tenant = (n: number) => `t${n}`;
const timeout = () => new Error('timed out');

/** One statement of `key` at `location`: its slots taken and given back, as the pool does. */
function statement(slots: CheckoutSlots, location: string, key: string): void {
  const at = slots.of(location);
  const own = at.tenant(key);
  expect(own.tryAcquire()).toBe(true);
  expect(at.location.tryAcquire()).toBe(true);
  at.location.release();
  own.release();
}

describe('CheckoutSlots', () => {
  it('keeps an idle tenant’s slot: the next statement of the tenant finds the same one', () => {
    const slots = new CheckoutSlots(5, 4, false);
    statement(slots, 'home/', 'a');
    const at = slots.of('home/');
    const own = at.tenant('a');
    statement(slots, 'home/', 'a');
    expect(slots.of('home/')).toBe(at);
    expect(at.tenant('a')).toBe(own);
    expect(own.idle).toBe(true);
  });

  it('bounds the idle tenants’ slots kept: thousands of tenants never mean thousands of semaphores', () => {
    const slots = new CheckoutSlots(5, 4, false);
    let most = 0;
    for (let n = 0; n < 5 * TENANT_SWEEP_MIN; n++) {
      statement(slots, 'home/', tenant(n));
      most = Math.max(most, slots.of('home/').tenantsKept);
    }
    expect(most).toBe(TENANT_SWEEP_MIN);
  });

  it('never drops a slot someone holds, and the per-tenant bound holds across sweeps', () => {
    const slots = new CheckoutSlots(5, 2, false);
    const at = slots.of('home/');
    const busy = at.tenant('busy');
    expect(busy.tryAcquire()).toBe(true);
    expect(busy.tryAcquire()).toBe(true);
    for (let n = 0; n < 2 * TENANT_SWEEP_MIN; n++) statement(slots, 'home/', tenant(n));
    expect(at.tenant('busy')).toBe(busy);
    expect(at.tenant('busy').tryAcquire()).toBe(false); // still at its bound of 2
    busy.release();
    expect(at.tenant('busy').tryAcquire()).toBe(true);
  });

  it('never drops a slot someone waits for: the waiter gets it from the holder', async () => {
    const slots = new CheckoutSlots(5, 1, false);
    const at = slots.of('home/');
    const own = at.tenant('busy');
    expect(own.tryAcquire()).toBe(true);
    let got = false;
    const wait = own.acquire(Date.now() + 5000, timeout).then(() => (got = true));
    for (let n = 0; n < 2 * TENANT_SWEEP_MIN; n++) statement(slots, 'home/', tenant(n));
    expect(at.tenant('busy')).toBe(own);
    own.release(); // handed to the waiter: still held
    await wait;
    expect(got).toBe(true);
    for (let n = 0; n < 2 * TENANT_SWEEP_MIN; n++) statement(slots, 'home/', tenant(n));
    expect(at.tenant('busy')).toBe(own);
    expect(own.tryAcquire()).toBe(false);
    own.release();
    for (let n = 0; n < 2 * TENANT_SWEEP_MIN; n++) statement(slots, 'home/', tenant(n));
    expect(at.tenant('busy')).not.toBe(own); // idle: swept, and made again with every slot free
    expect(at.tenant('busy').idle).toBe(true);
  });

  it('bounds the idle databases’ slots kept, and never drops a database in use', () => {
    const slots = new CheckoutSlots(5, 4, false);
    const held = slots.of('home/held');
    expect(held.location.tryAcquire()).toBe(true);
    const tenantHeld = slots.of('home/tenant-held');
    expect(tenantHeld.tenant('x').tryAcquire()).toBe(true);
    let most = 0;
    for (let n = 0; n < 5 * LOCATION_SWEEP_MIN; n++) {
      statement(slots, `home/db${n}`, tenant(n));
      most = Math.max(most, slots.locationsKept);
    }
    expect(most).toBe(LOCATION_SWEEP_MIN);
    expect(slots.of('home/held')).toBe(held);
    expect(held.location.inUse).toBe(1);
    expect(slots.of('home/tenant-held')).toBe(tenantHeld);
    expect(tenantHeld.tenant('x').inUse).toBe(1);
  });

  it('with fair checkout, keeps a database whose fair slots are held', () => {
    const slots = new CheckoutSlots(5, 4, true);
    const held = slots.of('home/held');
    expect(held.fair!.tryAcquire('x', 1)).toBe(true);
    for (let n = 0; n < 5 * LOCATION_SWEEP_MIN; n++) slots.of(`home/db${n}`);
    expect(slots.of('home/held')).toBe(held);
    held.fair!.release('x');
    for (let n = 0; n < 5 * LOCATION_SWEEP_MIN; n++) slots.of(`home/other${n}`);
    expect(slots.of('home/held')).not.toBe(held);
  });
});
