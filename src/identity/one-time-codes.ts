import type { Queryable } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { hashSecret, randomSecret } from './secret-token.js';

const PURPOSE = /^[a-z][a-z0-9_.-]{0,62}$/;
const CODE = /^[A-Za-z0-9_-]{22}$/;

/** A code that was spent: the tenant it was issued in and what it carried. */
export interface ConsumedCode {
  tenantId: string;
  payload: Record<string, unknown>;
  createdBy: string | null;
}

/**
 * One-time codes (invitations, e-mail confirmations) in `tenantry_private.one_time_codes`:
 * 128 random bits, stored only as a SHA-256, spent atomically by `consume` (a replay, an expired
 * code and a code of a suspended tenant all answer undefined). Issue inside `runAs(tenant)`:
 * the code belongs to the current tenant. Consume needs no tenant: the code names its own.
 *
 * @example
 * const codes = new OneTimeCodes(appPool);
 * const { code } = await runAs(tenantId, () => codes.issue({ purpose: 'invite', payload: { email, role } }));
 * const spent = await codes.consume({ purpose: 'invite', code }); // once; undefined the second time
 */
export class OneTimeCodes {
  constructor(private readonly db: Queryable) {}

  async issue(input: {
    purpose: string;
    payload?: Record<string, unknown>;
    ttlSeconds?: number;
    createdBy?: string;
  }): Promise<{ code: string; expiresAt: Date }> {
    if (!PURPOSE.test(input.purpose ?? ''))
      throw new InvalidArgumentError('purpose must be a short lower-case word', 'purpose');
    const code = randomSecret(16);
    const { rows } = await this.db.query<{ expires_at: Date }>(
      'select tenantry.issue_code($1, $2, $3, $4, $5) as expires_at',
      [
        input.purpose,
        hashSecret(code),
        JSON.stringify(input.payload ?? {}),
        input.ttlSeconds ?? 7 * 24 * 3600,
        input.createdBy ?? null,
      ],
    );
    return { code, expiresAt: rows[0]!.expires_at };
  }

  /** Spends a code once; undefined when it is malformed, unknown, expired, spent, or of another purpose. */
  async consume(input: { purpose: string; code: string; consumer?: string }): Promise<ConsumedCode | undefined> {
    if (!PURPOSE.test(input.purpose ?? '') || typeof input.code !== 'string' || !CODE.test(input.code))
      return undefined;
    const { rows } = await this.db.query<{
      tenant_id: string;
      payload: Record<string, unknown>;
      created_by: string | null;
    }>('select tenant_id, payload, created_by from tenantry.consume_code($1, $2, $3)', [
      input.purpose,
      hashSecret(input.code),
      input.consumer ?? null,
    ]);
    const row = rows[0];
    return row ? { tenantId: row.tenant_id, payload: row.payload, createdBy: row.created_by } : undefined;
  }

  /**
   * Revokes the current tenant's unspent codes of `purpose` whose payload contains `payload`
   * (all of the purpose's when omitted): they expire now and can no longer be spent. Answers how
   * many were revoked.
   */
  async revoke(input: { purpose: string; payload?: Record<string, unknown> }): Promise<number> {
    if (!PURPOSE.test(input.purpose ?? ''))
      throw new InvalidArgumentError('purpose must be a short lower-case word', 'purpose');
    const { rows } = await this.db.query<{ n: number }>('select tenantry.revoke_codes($1, $2) as n', [
      input.purpose,
      JSON.stringify(input.payload ?? {}),
    ]);
    return rows[0]?.n ?? 0;
  }

  /**
   * The stored form of a code (SHA-256), for an application's own SECURITY DEFINER function that
   * spends a code with `tenantry.consume_code` in the same statement as what the code unlocks.
   */
  static hash(code: string): Buffer {
    return hashSecret(code);
  }

  /** The current tenant's codes (never the codes themselves), newest first. */
  async list(purpose?: string): Promise<
    Array<{
      purpose: string;
      payload: Record<string, unknown>;
      createdBy: string | null;
      createdAt: Date;
      expiresAt: Date;
      consumedAt: Date | null;
    }>
  > {
    const { rows } = await this.db.query<{
      purpose: string;
      payload: Record<string, unknown>;
      created_by: string | null;
      created_at: Date;
      expires_at: Date;
      consumed_at: Date | null;
    }>('select purpose, payload, created_by, created_at, expires_at, consumed_at from tenantry.list_codes($1)', [
      purpose ?? null,
    ]);
    return rows.map((r) => ({
      purpose: r.purpose,
      payload: r.payload,
      createdBy: r.created_by,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      consumedAt: r.consumed_at,
    }));
  }
}
