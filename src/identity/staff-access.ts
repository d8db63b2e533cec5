import { runAs } from '../context/tenant-context.js';
import { isTenantId } from '../context/tenant-id.js';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { sqlStateOf, SqlState } from '../errors/sqlstate.js';
import { InvalidArgumentError, TenantNotFoundError } from '../errors/tenantry-error.js';
import { AccessError } from './access-error.js';
import { hasDeceptiveCharacters, visibleLength } from './visible-length.js';

/** A staff reason's bounds: at least this many visible characters ({@link visibleLength})… */
export const REASON_MIN_VISIBLE = 10;
/** … and at most this many characters in all, once trimmed. */
export const REASON_MAX_LENGTH = 500;

/** What a staff grant allows: acting as the tenant (through the app role) or reading it (through the support role). */
export type StaffAccessKind = 'act_as' | 'read';

/** A request for staff access to one tenant: always with a reason, always for a bounded time. */
export interface StaffAccessRequest {
  /** The staff member's session (`sid` of their token): grants die with it. */
  sessionId: string;
  tenantId: string;
  /**
   * Why: at most 500 characters, at least 10 of them visible (zero-width, blank and combining-only
   * text does not count), shown to the tenant's admins in their audit log.
   */
  reason: string;
  /** How long, 1 to 480 minutes; default 30. */
  minutes?: number;
}

/**
 * Staff across tenants. Staff are members of no tenant; to act as one they open a grant with a
 * reason and a bounded lifetime, recorded in the tenant's append-only audit log (which the
 * tenant's admins read). `read` runs a function as the **support role**: SELECT only, still under
 * the tenant policies, and admitted by the database only while an open `read` grant exists — no
 * BYPASSRLS role and no bypass setting anywhere on the path.
 *
 * @example
 * const staff = new StaffAccess({ appPool, supportPool });
 * const counts = await staff.read({ sessionId, tenantId, reason: 'Ticket #4711: missing uploads' },
 *   (db) => db.query('select count(*) from recordings'));
 */
export class StaffAccess {
  readonly #appPool: Queryable;
  readonly #supportPool: Queryable | undefined;

  constructor(options: { appPool: Queryable; supportPool?: Queryable }) {
    this.#appPool = options.appPool;
    this.#supportPool = options.supportPool;
  }

  /** Opens a grant (audited as `staff.access.begin`). Throws STAFF_ACCESS_REQUIRED without an active staff session. */
  async begin(
    request: StaffAccessRequest & { access: StaffAccessKind },
  ): Promise<{ grantId: string; expiresAt: Date }> {
    if (request.access !== 'act_as' && request.access !== 'read')
      throw new InvalidArgumentError('access must be act_as or read', 'access');
    if (!isTenantId(request.sessionId)) throw new AccessError('STAFF_ACCESS_REQUIRED');
    if (!isTenantId(request.tenantId)) throw new TenantNotFoundError();
    const reason = StaffAccess.checkReason(request.reason);
    const minutes = request.minutes ?? 30;
    if (!Number.isInteger(minutes) || minutes < 1 || minutes > 480)
      throw new InvalidArgumentError('minutes must be an integer from 1 to 480', 'minutes');
    try {
      const { rows } = await this.#appPool.query<{ grant_id: string; expires_at: Date }>(
        'select grant_id, expires_at from tenantry.begin_staff_access($1, $2, $3, $4, $5)',
        [request.sessionId, request.tenantId, request.access, reason, minutes],
      );
      return { grantId: rows[0]!.grant_id, expiresAt: rows[0]!.expires_at };
    } catch (error) {
      const state = sqlStateOf(error);
      if (state === SqlState.insufficientPrivilege) throw new AccessError('STAFF_ACCESS_REQUIRED', { cause: error });
      if (state === 'P0002') throw new TenantNotFoundError();
      throw error;
    }
  }

  /**
   * The reason as it will be recorded (trimmed), or 400 `REASON_INVALID` (field `reason`) when it
   * is not a string, has fewer than {@link REASON_MIN_VISIBLE} visible characters, or is longer
   * than {@link REASON_MAX_LENGTH}. `begin` and `read` (act-as and support reads) call it; an
   * application may call it to refuse early with the same code.
   *
   * @example
   * StaffAccess.checkReason('\u200B'.repeat(12)); // throws AccessError REASON_INVALID
   */
  static checkReason(reason: unknown): string {
    const trimmed = typeof reason === 'string' ? reason.trim() : '';
    // code points, as PostgreSQL's length() counts them (the table's own limit)
    if (
      visibleLength(trimmed) < REASON_MIN_VISIBLE ||
      [...trimmed].length > REASON_MAX_LENGTH ||
      hasDeceptiveCharacters(trimmed)
    )
      throw new AccessError('REASON_INVALID', {
        details: { field: 'reason', minVisible: REASON_MIN_VISIBLE, maxLength: REASON_MAX_LENGTH },
      });
    return trimmed;
  }

  /** Closes a grant early (audited as `staff.access.end`); false when it was not open. */
  async end(input: { sessionId: string; grantId: string }): Promise<boolean> {
    if (!isTenantId(input.sessionId) || !isTenantId(input.grantId)) return false;
    const { rows } = await this.#appPool.query<{ ended: boolean }>(
      'select tenantry.end_staff_access($1, $2) as ended',
      [input.sessionId, input.grantId],
    );
    return rows[0]!.ended;
  }

  /**
   * Audited cross-tenant read: opens a `read` grant, runs `fn` as the tenant on the support pool
   * (SELECT only), and closes the grant when `fn` settles. For reports over several tenants,
   * call once per tenant: each gets its own audit entry.
   */
  async read<T>(request: StaffAccessRequest, fn: (db: Queryable) => Promise<T>): Promise<T> {
    const support = this.#supportPool;
    if (!support)
      throw new InvalidArgumentError(
        'StaffAccess.read needs a supportPool (a TenantPool connected as the support role)',
        'supportPool',
      );
    const { grantId } = await this.begin({ ...request, access: 'read', minutes: request.minutes ?? 15 });
    try {
      return await runAs(request.tenantId, () => fn(support));
    } finally {
      await this.end({ sessionId: request.sessionId, grantId });
    }
  }
}
