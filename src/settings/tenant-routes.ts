/**
 * Which tenants this instance has cached, by their doorbell route: a doorbell carries a digest,
 * so the instance looks up which of its own tenants it names. Bounded: past `max` tenants the
 * oldest are forgotten: `add` answers the one it forgot, whose cached values the caller drops
 * (a doorbell for it could no longer be matched).
 */
export class TenantRoutes {
  readonly #byRoute = new Map<string, string>();
  readonly #max: number;

  constructor(max = 100_000) {
    this.#max = max;
  }

  /** Remembers a tenant; answers a tenant forgotten to make room, if any. */
  add(tenantId: string, route: string): string | undefined {
    if (this.#byRoute.get(route) === tenantId) return undefined;
    this.#byRoute.set(route, tenantId);
    if (this.#byRoute.size <= this.#max) return undefined;
    const [oldest, forgotten] = this.#byRoute.entries().next().value!;
    this.#byRoute.delete(oldest);
    return forgotten;
  }

  tenantsOf(route: string): string[] {
    const tenant = this.#byRoute.get(route);
    return tenant ? [tenant] : [];
  }

  all(): string[] {
    return [...this.#byRoute.values()];
  }
}
