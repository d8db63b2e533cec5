import { FairCheckout } from '../data/fair-checkout.js';
import { Semaphore } from './semaphore.js';

/**
 * Tenants' slots one database's map may reach before its idle ones are swept: it then grows to
 * twice what the last sweep kept (at least this many) before the next sweep, so a sweep's cost is
 * spread over at least as many new entries as it visits. Large enough for the tenants a database
 * serves at a time to find their slots kept (a slot made and dropped per statement, with the
 * map's rehashing, cost ~0.15 µs of the routed layer's client CPU per statement at 1,000 tenants,
 * bench/routed-layer-cost.ts); an idle slot is a few dozen bytes.
 */
export const TENANT_SWEEP_MIN = 4096;

/** The same bound for the databases' slots (each its own map, semaphore, and fair slots). */
export const LOCATION_SWEEP_MIN = 256;

/** The part of a Semaphore a checkout uses, so a fair slot and a plain one queue alike. */
export type Slot = Pick<Semaphore, 'tryAcquire' | 'acquire' | 'release'>;

/**
 * The slots of one database: its own bound, and one per tenant there (made on first use).
 * With `fairCheckout`, the database's slots shared by weight with each tenant's cap (`fair`)
 * take the place of both.
 *
 * A tenant's slot is kept while idle (a statement of a tenant seen before allocates nothing);
 * idle ones are swept only when the map passes its bound. Only an idle slot is dropped: nobody
 * holds it or waits for it, so nobody has a reference to it mid-checkout (a checkout takes or
 * queues for the slot in the same synchronous step that finds it, and gives it back only at
 * release). A tenant's next statement then makes a fresh one, with all its slots free, as the
 * dropped one was.
 */
export class LocationSlots {
  readonly location: Semaphore;
  readonly fair: FairCheckout | undefined;
  readonly #tenants = new Map<string, Semaphore>();
  #sweepAt = TENANT_SWEEP_MIN;

  constructor(
    poolSize: number,
    private readonly perTenant: number,
    fair: boolean,
  ) {
    this.location = new Semaphore(poolSize);
    this.fair = fair ? new FairCheckout(poolSize, perTenant) : undefined;
  }

  /** The slot of the tenant `key` ('' for none) in this database, made on first use. */
  tenant(key: string): Semaphore {
    const own = this.#tenants.get(key);
    if (own !== undefined) return own;
    if (this.#tenants.size >= this.#sweepAt) this.#sweepAt = Math.max(TENANT_SWEEP_MIN, 2 * this.#sweepTenants());
    const made = new Semaphore(this.perTenant);
    this.#tenants.set(key, made);
    return made;
  }

  /** Tenants' slots kept right now (held, waited for, or idle since the last sweep). */
  get tenantsKept(): number {
    return this.#tenants.size;
  }

  /**
   * Drops the idle tenants' slots; true when nothing of this database is held or waited for any
   * more (it may be dropped too).
   */
  sweep(): boolean {
    const fair = this.fair;
    return (
      this.#sweepTenants() === 0 &&
      this.location.idle &&
      (fair === undefined || (fair.inUse === 0 && fair.waiting === 0))
    );
  }

  /** Drops the idle tenants' slots; the number kept. */
  #sweepTenants(): number {
    this.#tenants.forEach(dropIdleTenant);
    return this.#tenants.size;
  }
}

// Map.forEach's callbacks of the sweeps (deleting the entry being visited is allowed): no
// [key, value] array per entry, as a for…of would make in a function run too rarely to be optimised
function dropIdleTenant(own: Semaphore, key: string, tenants: Map<string, Semaphore>): void {
  if (own.idle) tenants.delete(key);
}
function dropIdleLocation(slots: LocationSlots, location: string, all: Map<string, LocationSlots>): void {
  if (slots.sweep()) all.delete(location);
}

/**
 * RoutedTenantPool's slots per database (and per tenant there, see LocationSlots): made on a
 * checkout's first need, kept while idle, and swept (only the idle ones) when there are more than
 * the bound, so thousands of tenants or tenant databases never mean as many semaphores kept, and
 * a statement of a tenant seen before allocates none.
 */
export class CheckoutSlots {
  readonly #all = new Map<string, LocationSlots>();
  #sweepAt = LOCATION_SWEEP_MIN;

  constructor(
    private readonly poolSize: number,
    private readonly perTenant: number,
    private readonly fair: boolean,
  ) {}

  /** A database's slots, made on first use. */
  of(location: string): LocationSlots {
    const found = this.#all.get(location);
    if (found !== undefined) return found;
    if (this.#all.size >= this.#sweepAt) {
      this.#all.forEach(dropIdleLocation);
      this.#sweepAt = Math.max(LOCATION_SWEEP_MIN, 2 * this.#all.size);
    }
    const made = new LocationSlots(this.poolSize, this.perTenant, this.fair);
    this.#all.set(location, made);
    return made;
  }

  /** Databases whose slots are kept right now. */
  get locationsKept(): number {
    return this.#all.size;
  }
}
