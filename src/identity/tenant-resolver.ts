import { runAs } from '../context/tenant-context.js';
import { isTenantId } from '../context/tenant-id.js';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError, TenantNotFoundError, TenantSuspendedError } from '../errors/tenantry-error.js';
import { SqlState } from '../errors/sqlstate.js';
import { LRUCache } from 'lru-cache';
import { AccessError } from './access-error.js';
import { ApiKeys } from './api-keys.js';
import {
  bearerCredential,
  checkRequestAuthority,
  headerValue,
  looksLikeApiKey,
  type RequestFacts,
} from './request-facts.js';
import { normalizeHost } from './tenant-domains.js';
import { invalidToken } from './token-error.js';

/** Verifies a bearer token and returns its claims; throws (e.g. TOKEN_INVALID) otherwise. `TokenVerifier` fits. */
export interface BearerTokenVerifier {
  verify(token: string): Promise<{ claims: Readonly<Record<string, unknown>> }>;
}

/** The resolvers, in the order they run. Each is optional; signals they find must all agree. */
export type ResolverName = 'token' | 'apiKey' | 'host' | 'header' | 'path';

/** Options of {@link TenantResolver}. */
export interface TenantResolverOptions<M> {
  /** A TenantPool connected as the app role. */
  pool: Queryable;
  /** Which resolvers run, in this order. Default: every one configured below. */
  resolvers?: ResolverName[];
  /**
   * Access tokens. Member tokens carry `sub` (user), `tid` (tenant) and `sid` (session); staff
   * tokens carry `sub`, `sid` and `kind: "staff"`, and no `tid`.
   */
  tokens?: BearerTokenVerifier;
  /**
   * Check every token's `sid` against the server-side session (revocation at once). Default true;
   * turn off only for tokens of an external identity provider that has no Tenantry session.
   */
  sessions?: boolean;
  /** API keys: from `X-Api-Key`, or `Authorization: Bearer tnry_…`. Default on. */
  apiKeys?: boolean | { header?: string };
  /** Host resolution: `<slug>.<baseDomain>` subdomains and verified custom domains. */
  host?: { baseDomain?: string; customDomains?: boolean; reservedSubdomains?: string[]; cacheSeconds?: number };
  /** Header naming a tenant (id or slug) chosen by staff or a service. Default `x-tenant`; false to turn off. */
  header?: string | false;
  /**
   * The signed-in user's membership of the resolved tenant, or null when they are not a member.
   * Called inside `runAs(tenantId)` on every request: removing a member takes effect at once.
   */
  membership?: (input: {
    userId: string;
    tenantId: string;
    claims: Readonly<Record<string, unknown>>;
  }) => Promise<M | null>;
}

/** Who is calling, once resolved. */
export type Principal<M> =
  | { kind: 'user'; userId: string; sessionId: string | undefined; member: M }
  | {
      kind: 'staff';
      userId: string;
      sessionId: string;
      grant: { id: string; access: 'act_as' | 'read'; expiresAt: Date; reason: string };
    }
  | { kind: 'apiKey'; keyId: string; name: string }
  | { kind: 'anonymous' };

/** The outcome of resolution: one active tenant (or a suspended one for staff), and the principal. */
export interface Resolution<M> {
  tenantId: string;
  tenantStatus: 'active' | 'suspended';
  principal: Principal<M>;
  /** The signals that named the tenant, e.g. `['token', 'host']`. */
  sources: ResolverName[];
}

interface Signal {
  source: ResolverName;
  /** Resolved tenant id, or undefined when the name it gave is unknown. */
  tenantId: string | undefined;
  /** A selection (header, path) rather than a proof (token, key, host). */
  selection: boolean;
}

type Caller =
  | {
      kind: 'user';
      userId: string;
      tenantId: string;
      sessionId: string | undefined;
      claims: Readonly<Record<string, unknown>>;
    }
  | { kind: 'staff'; userId: string; sessionId: string }
  | { kind: 'apiKey'; keyId: string; name: string; tenantId: string }
  | { kind: 'anonymous' };

interface AuthorizeRow {
  tenant_status: string | null;
  session_user_id: string | null;
  session_tenant_id: string | null;
  session_kind: string | null;
  grant_id: string | null;
  grant_access: 'act_as' | 'read' | null;
  grant_expires_at: Date | null;
  grant_reason: string | null;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Finds the tenant of a request and proves the caller may act in it. Each resolver (token, API
 * key, host, header, path) may name a tenant; they must all name the same one — conflicting
 * signals are refused (TENANT_CONFLICT), never settled by precedence. A header or path choice is
 * honoured only for staff (with an open grant) and must agree with every proof otherwise.
 * Then, in one round trip, the tenant's status and the session are checked, and a member's
 * membership is looked up inside the tenant: unknown or deleted tenant → 404 TENANT_NOT_FOUND,
 * non-member → 403 NOT_A_MEMBER, suspended → 403 TENANT_SUSPENDED, ended session → 401.
 *
 * @example
 * const resolver = new TenantResolver({ pool: appPool, tokens: verifier, host: { baseDomain: 'example.app' },
 *   membership: ({ userId }) => appPool.query('select role from members where user_id = $1', [userId]).then((r) => r.rows[0] ?? null) });
 * const { tenantId, principal } = await resolver.resolve({ host: req.headers.host, headers: req.headers });
 */
export class TenantResolver<M = unknown> {
  readonly #pool: Queryable;
  readonly #order: ResolverName[];
  readonly #tokens: BearerTokenVerifier | undefined;
  readonly #sessions: boolean;
  readonly #apiKeys: ApiKeys | undefined;
  readonly #apiKeyHeader: string;
  readonly #baseDomain: string | undefined;
  readonly #customDomains: boolean;
  readonly #reserved: ReadonlySet<string>;
  readonly #hostCacheMs: number;
  readonly #hostCache = new LRUCache<string, { tenantId: string | undefined; until: number }>({ max: 10_000 });
  readonly #header: string | undefined;
  readonly #membership: TenantResolverOptions<M>['membership'];

  constructor(options: TenantResolverOptions<M>) {
    if (!options?.pool) throw new ConfigurationError('TenantResolver needs the app pool');
    this.#pool = options.pool;
    this.#tokens = options.tokens;
    this.#sessions = options.sessions ?? true;
    this.#apiKeys = options.apiKeys === false ? undefined : new ApiKeys(options.pool);
    this.#apiKeyHeader = (typeof options.apiKeys === 'object' && options.apiKeys.header) || 'x-api-key';
    const base = options.host?.baseDomain;
    if (
      base !== undefined &&
      !(base.length <= 200 && base.split('.').every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)))
    ) {
      throw new ConfigurationError('host.baseDomain must be a lower-case host name such as example.app (or localhost)');
    }
    this.#baseDomain = base;
    this.#customDomains = options.host?.customDomains ?? options.host !== undefined;
    this.#reserved = new Set(options.host?.reservedSubdomains ?? ['www', 'api', 'app', 'admin', 'staff']);
    this.#hostCacheMs = (options.host?.cacheSeconds ?? 30) * 1000;
    this.#header = options.header === false ? undefined : (options.header ?? 'x-tenant').toLowerCase();
    this.#membership = options.membership;
    if (this.#tokens && !this.#membership)
      throw new ConfigurationError('Token resolution needs a membership lookup: a user must be a member of the tenant');
    const available: ResolverName[] = [];
    if (this.#tokens) available.push('token');
    if (this.#apiKeys) available.push('apiKey');
    if (options.host) available.push('host');
    if (this.#header) available.push('header');
    available.push('path');
    const order = options.resolvers ?? available;
    const unknown = order.find((r) => !available.includes(r));
    if (unknown) throw new ConfigurationError(`Resolver ${unknown} is listed but not configured`);
    this.#order = order;
  }

  /** The app pool the resolver queries (adapters write staff audit entries through it). */
  get pool(): Queryable {
    return this.#pool;
  }

  /** Resolves a request; throws an AccessError / TokenError / TenantryError with a status and a stable code. */
  async resolve(facts: RequestFacts): Promise<Resolution<M>> {
    // a malformed Host, or an absolute-form target naming another host: refused, never ignored
    checkRequestAuthority(facts);
    let caller: Caller = { kind: 'anonymous' };
    const signals: Signal[] = [];
    const bearer = bearerCredential(facts);
    if (bearer === 'malformed')
      throw new AccessError('UNAUTHENTICATED', {
        message: 'The Authorization header is malformed or repeated: send one, as Bearer <credential>',
      });
    // two credentials (a key in X-Api-Key and a key or token in Authorization) leave the principal
    // ambiguous: refused, never settled by ignoring one
    if (bearer !== undefined && this.#order.includes('apiKey')) {
      const fromHeader = headerValue(facts, this.#apiKeyHeader);
      if (fromHeader.value !== undefined || fromHeader.repeated)
        throw new AccessError('TENANT_CONFLICT', {
          message: `Send one credential: in Authorization or in ${this.#apiKeyHeader}, not both`,
        });
    }

    for (const resolver of this.#order) {
      switch (resolver) {
        case 'token':
          if (bearer !== undefined && !looksLikeApiKey(bearer)) {
            caller = this.#callerFromClaims((await this.#tokens!.verify(bearer)).claims);
            if (caller.kind === 'user') signals.push({ source: 'token', tenantId: caller.tenantId, selection: false });
          }
          break;
        case 'apiKey': {
          const fromHeader = headerValue(facts, this.#apiKeyHeader);
          if (fromHeader.repeated) throw new AccessError('API_KEY_INVALID');
          const key = fromHeader.value ?? (bearer !== undefined && looksLikeApiKey(bearer) ? bearer : undefined);
          if (key === undefined) break;
          const verified = await this.#apiKeys!.verify(key);
          if (!verified) throw new AccessError('API_KEY_INVALID');
          if (caller.kind === 'anonymous')
            caller = { kind: 'apiKey', keyId: verified.keyId, name: verified.name, tenantId: verified.tenantId };
          else if (caller.kind === 'staff')
            throw new AccessError('TENANT_CONFLICT', { message: 'Send either a staff token or an API key, not both' });
          signals.push({ source: 'apiKey', tenantId: verified.tenantId, selection: false });
          break;
        }
        case 'host': {
          if (headerValue(facts, 'host').repeated)
            throw new AccessError('TENANT_CONFLICT', { message: 'The Host header is repeated' });
          const signal = await this.#hostSignal(facts.host);
          if (signal) signals.push(signal);
          break;
        }
        case 'header': {
          const { value, repeated } = headerValue(facts, this.#header!);
          if (repeated) throw new AccessError('TENANT_CONFLICT', { message: `The ${this.#header} header is repeated` });
          if (value !== undefined)
            signals.push({ source: 'header', tenantId: await this.#lookupName(value), selection: true });
          break;
        }
        case 'path':
          if (facts.pathTenant !== undefined)
            signals.push({ source: 'path', tenantId: await this.#lookupName(facts.pathTenant), selection: true });
          break;
      }
    }
    if (bearer !== undefined && !looksLikeApiKey(bearer) && !this.#order.includes('token'))
      throw new AccessError('UNAUTHENTICATED', { message: 'Bearer tokens are not accepted here' });

    const tenantId = this.#agree(signals, caller);
    const sessionId = caller.kind === 'user' || caller.kind === 'staff' ? caller.sessionId : undefined;
    const { rows } = await this.#pool.query<AuthorizeRow>('select * from tenantry.authorize_request($1, $2)', [
      tenantId,
      // staff sessions are always checked: a staff grant lives and dies with its session
      this.#sessions || caller.kind === 'staff' ? (sessionId ?? null) : null,
    ]);
    const row = rows[0]!;
    // a tenant whose onboarding has not finished does not exist yet, to a request
    if (row.tenant_status === null || row.tenant_status === 'deleted' || row.tenant_status === 'provisioning')
      throw new TenantNotFoundError();
    const status = row.tenant_status as 'active' | 'suspended';
    const sources = signals.map((s) => s.source);

    switch (caller.kind) {
      case 'user': {
        if (
          this.#sessions &&
          (row.session_user_id !== caller.userId || row.session_tenant_id !== tenantId || row.session_kind !== 'user')
        ) {
          throw new AccessError('SESSION_REVOKED');
        }
        const claims = caller.claims;
        const userId = caller.userId;
        const member = await runAs(tenantId, () => this.#membership!({ userId, tenantId, claims })).catch(
          (error: unknown) => {
            // the database refuses a suspended tenant's (unpinned) tenant tables: a lookup that reads
            // one cannot tell a member from a stranger, and must not tell a stranger the tenant is
            // suspended. Read membership from a pinned table to answer members TENANT_SUSPENDED.
            const code = (error as { code?: unknown } | null)?.code;
            if (status === 'suspended' && (code === 'TENANT_SUSPENDED' || code === SqlState.tenantSuspended))
              return null;
            throw error;
          },
        );
        if (member === null || member === undefined) throw new AccessError('NOT_A_MEMBER');
        if (status !== 'active') throw new TenantSuspendedError();
        return {
          tenantId,
          tenantStatus: status,
          principal: { kind: 'user', userId, sessionId: caller.sessionId, member },
          sources,
        };
      }
      case 'staff': {
        if (row.session_user_id !== caller.userId || row.session_kind !== 'staff')
          throw new AccessError('SESSION_REVOKED');
        if (row.grant_id === null) throw new AccessError('STAFF_ACCESS_REQUIRED');
        // a read grant opens support reads (audit log, support SQL), not requests as the tenant
        if (row.grant_access !== 'act_as')
          throw new AccessError('STAFF_ACCESS_REQUIRED', {
            message: 'Your open grant on this tenant is read-only: requests as the tenant need an act_as grant',
          });
        const grant = {
          id: row.grant_id,
          access: row.grant_access,
          expiresAt: row.grant_expires_at!,
          reason: row.grant_reason!,
        };
        return {
          tenantId,
          tenantStatus: status,
          principal: { kind: 'staff', userId: caller.userId, sessionId: caller.sessionId, grant },
          sources,
        };
      }
      case 'apiKey':
        if (status !== 'active') throw new TenantSuspendedError();
        return {
          tenantId,
          tenantStatus: status,
          principal: { kind: 'apiKey', keyId: caller.keyId, name: caller.name },
          sources,
        };
      default:
        if (status !== 'active') throw new TenantSuspendedError();
        return { tenantId, tenantStatus: status, principal: { kind: 'anonymous' }, sources };
    }
  }

  #callerFromClaims(claims: Readonly<Record<string, unknown>>): Caller {
    const { sub, sid, tid, kind } = claims;
    // a verified token of the wrong shape is an invalid token (never echoing the claim's value)
    if (sub === undefined) throw invalidToken('claim_missing', { claim: 'sub' });
    if (!isTenantId(sub))
      throw invalidToken('claim_invalid', {
        claim: 'sub',
        message: 'The access token is invalid: its sub claim (the user) must be a UUID',
      });
    if (kind !== undefined && kind !== 'user' && kind !== 'staff')
      throw invalidToken('claim_invalid', {
        claim: 'kind',
        message: 'The access token is invalid: its kind claim must be "user" or "staff"',
      });
    if (kind === 'staff' && tid !== undefined)
      throw invalidToken('claim_invalid', {
        claim: 'tid',
        message: 'The access token is invalid: a staff token names no tenant (no tid claim)',
      });
    if (kind !== 'staff' && tid === undefined) throw invalidToken('claim_missing', { claim: 'tid' });
    if (kind !== 'staff' && !isTenantId(tid))
      throw invalidToken('claim_invalid', {
        claim: 'tid',
        message: 'The access token is invalid: its tid claim (the tenant) must be a UUID',
      });
    if (sid !== undefined && !isTenantId(sid)) throw new AccessError('SESSION_REVOKED');
    if ((this.#sessions || kind === 'staff') && sid === undefined)
      throw new AccessError('SESSION_REVOKED', { message: 'The token names no session: sign in again' });
    if (kind === 'staff') return { kind: 'staff', userId: sub.toLowerCase(), sessionId: (sid as string).toLowerCase() };
    return {
      kind: 'user',
      userId: sub.toLowerCase(),
      tenantId: (tid as string).toLowerCase(),
      sessionId: (sid as string | undefined)?.toLowerCase(),
      claims,
    };
  }

  /** The one tenant every signal names; refuses conflicts, unknown names and selections nobody may make. */
  #agree(signals: Signal[], caller: Caller): string {
    // Decided before any "not found", so that an answer never tells whether a tenant exists to
    // someone who could not reach it anyway: a header or path choice is trusted only from staff,
    // and from anyone else it must repeat what a credential proves (a Host header is no
    // credential: the client writes it too); with a credential, every other signal must name the
    // credential's tenant, an unknown one included.
    const credential = signals.find((s) => s.source === 'token' || s.source === 'apiKey');
    if (signals.some((s) => s.selection) && !credential && caller.kind !== 'staff')
      throw new AccessError('TENANT_SELECTION_FORBIDDEN');
    if (credential?.tenantId !== undefined && signals.some((s) => s.tenantId !== credential.tenantId))
      throw new AccessError('TENANT_CONFLICT');
    if (signals.some((s) => s.tenantId === undefined)) throw new TenantNotFoundError();
    const named = new Set(signals.map((s) => s.tenantId!));
    if (named.size > 1) throw new AccessError('TENANT_CONFLICT');
    const [tenantId] = named;
    if (tenantId === undefined) {
      if (caller.kind === 'anonymous') throw new AccessError('UNAUTHENTICATED');
      throw new AccessError('TENANT_REQUIRED');
    }
    return tenantId;
  }

  async #hostSignal(host: string | undefined): Promise<Signal | undefined> {
    const name = normalizeHost(host);
    if (!name) return undefined;
    const base = this.#baseDomain;
    if (base !== undefined && (name === base || name.endsWith(`.${base}`))) {
      const sub = name === base ? '' : name.slice(0, -(base.length + 1));
      if (sub === '' || this.#reserved.has(sub)) return undefined;
      // only one level: a.b.example.app is no tenant's
      return {
        source: 'host',
        tenantId: sub.includes('.') ? undefined : await this.#cached(`s:${sub}`, () => this.#bySlug(sub)),
        selection: false,
      };
    }
    if (!this.#customDomains) return undefined;
    return { source: 'host', tenantId: await this.#cached(`d:${name}`, () => this.#byDomain(name)), selection: false };
  }

  async #lookupName(value: string): Promise<string | undefined> {
    if (isTenantId(value)) return value.toLowerCase();
    return SLUG.test(value) ? this.#cached(`s:${value}`, () => this.#bySlug(value)) : undefined;
  }

  // Names map to ids for a short while; the status is read fresh on every request (authorize_request).
  async #cached(key: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
    const hit = this.#hostCache.get(key);
    if (hit && hit.until > Date.now()) return hit.tenantId;
    const tenantId = await load();
    // unknown names are remembered briefly too, so a flood of made-up hosts costs one query each per second at most
    this.#hostCache.set(key, {
      tenantId,
      until: Date.now() + (tenantId ? this.#hostCacheMs : Math.min(1000, this.#hostCacheMs)),
    });
    return tenantId;
  }

  async #bySlug(slug: string): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ tenant_id: string }>('select tenant_id from tenantry.resolve_slug($1)', [
      slug,
    ]);
    return rows[0]?.tenant_id;
  }

  async #byDomain(domain: string): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ tenant_id: string }>(
      'select tenant_id from tenantry.resolve_domain($1)',
      [domain],
    );
    return rows[0]?.tenant_id;
  }

  /** Forgets cached host and slug names (e.g. after a domain was removed or a slug changed). */
  forgetNames(): void {
    this.#hostCache.clear();
  }
}
