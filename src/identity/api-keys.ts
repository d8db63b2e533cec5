import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { compactUuid, expandUuid, hashSecret, randomSecret } from './secret-token.js';

/** An API key as listed: never its secret. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  createdBy: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** A key that verified: the tenant it belongs to and that tenant's status. */
export interface VerifiedApiKey {
  keyId: string;
  name: string;
  tenantId: string;
  tenantStatus: string | null;
}

/** Keys look like `tnry_<32 hex: key id>_<43 base64url: secret>`; the prefix lets secret scanners find leaked ones. */
const KEY_FORMAT = /^tnry_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

/**
 * Per-tenant API keys. The key is shown once, at creation; the database keeps only its SHA-256 in
 * `tenantry_private.api_keys`, which the app role cannot read: it creates, lists, revokes and
 * verifies through privilege-checked functions. Create, list and revoke act on the current tenant
 * (call inside `runAs`); verify needs no tenant, the key names its own.
 *
 * @example
 * const keys = new ApiKeys(appPool);
 * const { key } = await runAs(tenantId, () => keys.create({ name: 'CI upload' }));
 * const verified = await keys.verify(key); // { tenantId, keyId, … } or undefined
 */
export class ApiKeys {
  constructor(private readonly db: Queryable) {}

  /** A new key of the current tenant. `key` is the only time the secret is visible. */
  async create(input: {
    name: string;
    createdBy?: string;
    expiresAt?: Date;
  }): Promise<{ id: string; name: string; key: string; expiresAt: Date | null }> {
    const name = typeof input?.name === 'string' ? input.name.trim() : '';
    if (name.length < 1 || name.length > 200)
      throw new InvalidArgumentError('name must be 1 to 200 characters', 'name');
    if (input.expiresAt !== undefined && !(input.expiresAt instanceof Date && input.expiresAt.getTime() > Date.now())) {
      throw new InvalidArgumentError('expiresAt must be a future date', 'expiresAt');
    }
    const secret = randomSecret(32);
    const { rows } = await this.db.query<{ id: string }>('select tenantry.create_api_key($1, $2, $3, $4) as id', [
      name,
      hashSecret(secret),
      input.createdBy ?? null,
      input.expiresAt ?? null,
    ]);
    const id = rows[0]!.id;
    return { id, name, key: `tnry_${compactUuid(id)}_${secret}`, expiresAt: input.expiresAt ?? null };
  }

  /** The current tenant's keys, newest first (revoked ones included, marked). */
  async list(): Promise<ApiKeyInfo[]> {
    const { rows } = await this.db.query<{
      id: string;
      name: string;
      created_by: string | null;
      created_at: Date;
      expires_at: Date | null;
      last_used_at: Date | null;
      revoked_at: Date | null;
    }>('select id, name, created_by, created_at, expires_at, last_used_at, revoked_at from tenantry.list_api_keys()');
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      createdBy: r.created_by,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      lastUsedAt: r.last_used_at,
      revokedAt: r.revoked_at,
    }));
  }

  /** Revokes one of the current tenant's keys; false when it is not one (or already revoked). Takes effect on the next request. */
  async revoke(id: string): Promise<boolean> {
    if (!/^[0-9a-f-]{36}$/.test(id)) return false;
    const { rows } = await this.db.query<{ revoked: boolean }>('select tenantry.revoke_api_key($1) as revoked', [id]);
    return rows[0]!.revoked;
  }

  /** The key's tenant when the key is well-formed, known, not revoked nor expired; undefined otherwise. */
  async verify(key: string): Promise<VerifiedApiKey | undefined> {
    const parsed = ApiKeys.parse(key);
    if (!parsed) return undefined;
    const { rows } = await this.db.query<{ tenant_id: string; tenant_status: string | null; key_name: string }>(
      'select tenant_id, tenant_status, key_name from tenantry.verify_api_key($1, $2)',
      [parsed.keyId, hashSecret(parsed.secret)],
    );
    const row = rows[0];
    return row
      ? { keyId: parsed.keyId, name: row.key_name, tenantId: row.tenant_id, tenantStatus: row.tenant_status }
      : undefined;
  }

  /** Splits a key into its id and secret; undefined when it is not a Tenantry key. */
  static parse(key: unknown): { keyId: string; secret: string } | undefined {
    if (typeof key !== 'string' || key.length > 100) return undefined;
    const match = KEY_FORMAT.exec(key);
    return match ? { keyId: expandUuid(match[1]!), secret: match[2]! } : undefined;
  }
}
