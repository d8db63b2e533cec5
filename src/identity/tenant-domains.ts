import { promises as dns } from 'node:dns';
import { domainToASCII } from 'node:url';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { AccessError } from './access-error.js';
import { randomSecret } from './secret-token.js';

const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** A custom domain of the current tenant. */
export interface TenantDomain {
  domain: string;
  /** Publish `TXT <txtName> "<txtValue>"` to verify the domain. */
  txtName: string;
  txtValue: string;
  createdAt: Date;
  verifiedAt: Date | null;
}

/** Looks TXT records up; node's `dns.promises.resolveTxt` by default. */
export type TxtResolver = (name: string) => Promise<string[][]>;

/** Options of {@link TenantDomains}. */
export interface TenantDomainsOptions {
  resolveTxt?: TxtResolver;
  /**
   * The service's own domain(s): the resolver's `host.baseDomain`, whose subdomains are tenant
   * slugs. A custom domain equal to one or under one is refused (DOMAIN_RESERVED): it would
   * shadow, or be shadowed by, a tenant's subdomain (`evil.example.app` claimed by tenant A while
   * `evil` is, or later becomes, tenant B's slug).
   */
  baseDomain?: string | readonly string[];
}

/**
 * A request's Host as a domain: lower case, IDN to punycode, port and trailing dot removed.
 * Undefined when it is not a valid host name (an IP literal included).
 */
export function normalizeHost(host: unknown): string | undefined {
  if (typeof host !== 'string' || host.length === 0 || host.length > 300) return undefined;
  let name = host.trim();
  if (name.startsWith('[')) return undefined; // IPv6 literal
  name = name.replace(/:\d{1,5}$/, '').replace(/\.$/, '');
  const ascii = domainToASCII(name);
  if (ascii === '' || ascii.length > 253) return undefined;
  const labels = ascii.split('.');
  // the last label begins with a letter, as the domains table's CHECK requires (fuzzing found
  // `fuzz.9999example` accepted here and refused there with a 500)
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || !/^[a-z]/.test(labels.at(-1)!)) return undefined;
  return ascii;
}

/**
 * Custom domains of tenants, in `tenantry_private.domains`: a domain belongs to exactly one
 * tenant and resolves only after its owner proved control of it with a DNS TXT record.
 * `add`, `verify`, `remove` and `list` act on the current tenant (call inside `runAs`);
 * `resolve` needs no tenant.
 *
 * @example
 * const domains = new TenantDomains(appPool);
 * const { txtName, txtValue } = await runAs(tenantId, () => domains.add('app.acme.com'));
 * // … the customer publishes the record …
 * await runAs(tenantId, () => domains.verify('app.acme.com'));
 */
export class TenantDomains {
  readonly #resolveTxt: TxtResolver;
  readonly #bases: readonly string[];

  constructor(
    private readonly db: Queryable,
    options: TenantDomainsOptions = {},
  ) {
    this.#resolveTxt = options.resolveTxt ?? ((name) => dns.resolveTxt(name));
    const bases = options.baseDomain === undefined ? [] : [options.baseDomain].flat();
    this.#bases = bases.map((base) => {
      // as the resolver's host.baseDomain: lower-case labels, a single one allowed (localhost)
      const name = domainToASCII(base.toLowerCase().replace(/\.$/, ''));
      if (name.length > 253 || !name.split('.').every((label) => LABEL.test(label)))
        throw new InvalidArgumentError('baseDomain must be a host name such as example.app', 'baseDomain');
      return name;
    });
  }

  /**
   * Claims a domain for the current tenant; throws DOMAIN_TAKEN when another tenant holds it, and
   * DOMAIN_RESERVED when it is (under) the service's base domain. Idempotent.
   */
  async add(domain: string): Promise<TenantDomain> {
    const name = this.#claimable(domain);
    // the claim and the read are two statements: a remove of the same domain (another request of
    // this tenant) can land between them, and then the domain is claimed again, a bounded number of times
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.db.query<{ added: boolean }>('select tenantry.add_domain($1, $2) as added', [
        name,
        randomSecret(24),
      ]);
      if (!rows[0]!.added) throw new AccessError('DOMAIN_TAKEN', { details: { domain: name } });
      const found = (await this.list()).find((d) => d.domain === name);
      if (found) return found;
      if (attempt === 3)
        throw new AccessError('DOMAIN_TAKEN', {
          message: 'The domain was removed while it was being added, three times: try again',
          details: { domain: name },
        });
    }
  }

  /** Checks the TXT record and marks the domain verified; throws DOMAIN_UNVERIFIED when the record is missing. */
  async verify(domain: string): Promise<TenantDomain> {
    // one added before the base domain was configured is never verified either
    const name = this.#claimable(domain);
    const claimed = (await this.list()).find((d) => d.domain === name);
    if (!claimed)
      throw new AccessError('DOMAIN_UNVERIFIED', {
        message: 'This tenant has not added the domain',
        details: { domain: name },
      });
    if (claimed.verifiedAt) return claimed;
    let records: string[][] = [];
    try {
      records = await this.#resolveTxt(claimed.txtName);
    } catch {
      records = []; // NXDOMAIN, timeouts: not verified
    }
    if (!records.some((chunks) => chunks.join('') === claimed.txtValue))
      throw new AccessError('DOMAIN_UNVERIFIED', { details: { domain: name } });
    await this.db.query('select tenantry.confirm_domain($1)', [name]);
    return { ...claimed, verifiedAt: new Date() };
  }

  /** Removes one of the current tenant's domains; false when it had none by that name. */
  async remove(domain: string): Promise<boolean> {
    const name = normalizeHost(domain);
    if (!name) return false;
    const { rows } = await this.db.query<{ removed: boolean }>('select tenantry.remove_domain($1) as removed', [name]);
    return rows[0]!.removed;
  }

  async list(): Promise<TenantDomain[]> {
    const { rows } = await this.db.query<{
      domain: string;
      verification_token: string;
      created_at: Date;
      verified_at: Date | null;
    }>('select domain, verification_token, created_at, verified_at from tenantry.list_domains()');
    return rows.map((r) => ({
      domain: r.domain,
      txtName: `_tenantry.${r.domain}`,
      txtValue: `tenantry-verify=${r.verification_token}`,
      createdAt: r.created_at,
      verifiedAt: r.verified_at,
    }));
  }

  /** The tenant a verified domain belongs to, with its status; undefined for an unknown or unverified domain. */
  async resolve(host: string): Promise<{ tenantId: string; tenantStatus: string } | undefined> {
    const name = normalizeHost(host);
    if (!name) return undefined;
    const { rows } = await this.db.query<{ tenant_id: string; tenant_status: string }>(
      'select tenant_id, tenant_status from tenantry.resolve_domain($1)',
      [name],
    );
    return rows[0] ? { tenantId: rows[0].tenant_id, tenantStatus: rows[0].tenant_status } : undefined;
  }

  /** The normalized domain, if a tenant may claim it: a host name, not the service's own. */
  #claimable(domain: string): string {
    const name = normalizeHost(domain);
    if (!name) throw new InvalidArgumentError('domain must be a host name such as app.example.com', 'domain');
    if (this.#bases.some((base) => name === base || name.endsWith(`.${base}`)))
      throw new AccessError('DOMAIN_RESERVED', { details: { domain: name } });
    return name;
  }
}
