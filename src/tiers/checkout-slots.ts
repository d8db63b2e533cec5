import { FairCheckout } from '../data/fair-checkout.js';
import { Semaphore } from './semaphore.js';

/** The slots of one database: its own bound, and one per tenant (created on demand, dropped when idle). */
export interface LocationSlots {
  location: Semaphore;
  tenants: Map<string, Semaphore>;
  /** With `fairCheckout`: the database's slots shared by weight, with each tenant's cap (instead of the two above). */
  fair?: FairCheckout;
}

/** The part of a Semaphore a checkout uses, so a fair slot and a plain one queue alike. */
export type Slot = Pick<Semaphore, 'tryAcquire' | 'acquire' | 'release'>;

/**
 * RoutedTenantPool's slots per database and per tenant there: made on a checkout's first need,
 * dropped once nobody holds or waits for them (thousands of tenants never mean thousands of
 * semaphores kept).
 */
export class CheckoutSlots {
  readonly #all = new Map<string, LocationSlots>();

  constructor(
    private readonly poolSize: number,
    private readonly perTenant: number,
    private readonly fair: boolean,
  ) {}

  /** A database's slots and the tenant's (`key`, '' for none) there, made on first use. */
  of(location: string, key: string): { slots: LocationSlots; own: Semaphore } {
    let slots = this.#all.get(location);
    if (!slots) {
      slots = {
        location: new Semaphore(this.poolSize),
        tenants: new Map(),
        ...(this.fair ? { fair: new FairCheckout(this.poolSize, this.perTenant) } : {}),
      };
      this.#all.set(location, slots);
    }
    let own = slots.tenants.get(key);
    if (!own) {
      own = new Semaphore(this.perTenant);
      slots.tenants.set(key, own);
    }
    return { slots, own };
  }

  /**
   * After a checkout's slots were given back: the tenant's, then the database's, dropped when
   * idle (nobody holds or waits, so nobody has a reference mid-checkout).
   */
  dropIdle(slots: LocationSlots, own: Semaphore, key: string, location: string): void {
    if (own.idle && slots.tenants.get(key) === own) slots.tenants.delete(key);
    const fair = slots.fair;
    const fairIdle = !fair || (fair.inUse === 0 && fair.waiting === 0);
    if (slots.tenants.size === 0 && slots.location.idle && fairIdle && this.#all.get(location) === slots)
      this.#all.delete(location);
  }
}
