import type pg from 'pg';
import { runAs } from '../../context/tenant-context.js';
import { OneTimeCodes } from '../../identity/one-time-codes.js';

/** What an application's delivery hook gets: the invitation, inside its transaction. */
export interface InvitationDelivery {
  /**
   * The transaction (app role, the tenant in context) that issued the code: write the message
   * to the application's outbox with it, and the code and its delivery commit together.
   */
  client: pg.PoolClient;
  tenantId: string;
  email: string;
  /** The one-time code (purpose `invite`, payload `{ email, role: 'owner' }`). Never log it. */
  code: string;
  expiresAt: Date;
}

/** Options of the invitation step. */
export interface OwnerInvitationOptions {
  /** A TenantPool on the home database as the app role (where `OneTimeCodes` live). */
  pool: Pick<pg.Pool, 'connect'>;
  /** Lifetime of the invitation (default 7 days). */
  ttlSeconds?: number;
  /**
   * Delivers the invitation (e.g. `select app.send_invitation($1)` into the application's outbox),
   * in the transaction that issued it. Without it the code is returned to the caller, once.
   */
  deliver?: (delivery: InvitationDelivery) => Promise<void>;
}

/** The invitation step's outcome: a new code (returned only when nothing delivered it), or the one found. */
export interface OwnerInvitation {
  email: string;
  /** False when an invitation of this owner was already issued by an earlier attempt. */
  issued: boolean;
  /** True when an earlier, unspent invitation was revoked for this one (see `reissue`). */
  replaced?: boolean;
  /** True when the owner already accepted an invitation: nothing was issued. */
  accepted?: boolean;
  delivered: boolean;
  /** Only when issued and not delivered by a hook: pass it on to the owner. */
  code?: string;
  expiresAt: Date;
}

/**
 * Invites the tenant's first owner, exactly once: in one transaction as the tenant, looks for an
 * owner invitation of this address (issued by an earlier attempt that crashed before recording
 * the step: its code and delivery committed together), else issues one (`OneTimeCodes`, purpose
 * `invite`, role `owner`) and hands it to `deliver`. A crash before the commit leaves nothing; a
 * crash after it is found by the next attempt. With `reissue`, an earlier invitation not yet
 * accepted is revoked and a new one issued in the same transaction (exactly one valid invitation
 * at any time): for a code that was never shown (a run killed before it returned) or was lost.
 */
export async function inviteOwner(
  tenantId: string,
  email: string,
  options: OwnerInvitationOptions,
  reissue = false,
): Promise<OwnerInvitation> {
  return runAs(tenantId, async () => {
    const client = await options.pool.connect();
    let failed = false;
    try {
      await client.query('BEGIN');
      const codes = new OneTimeCodes(client);
      const earlier = (await codes.list('invite')).find(
        (c) => c.payload.email === email && c.payload.role === 'owner' && (c.consumedAt || c.expiresAt > new Date()),
      );
      if (earlier?.consumedAt) {
        await client.query('COMMIT');
        return { email, issued: false, accepted: true, delivered: !!options.deliver, expiresAt: earlier.expiresAt };
      }
      if (earlier && !reissue) {
        await client.query('COMMIT');
        return { email, issued: false, delivered: !!options.deliver, expiresAt: earlier.expiresAt };
      }
      // replacing an invitation nobody saw: revoked in the transaction that issues the new one
      const replaced = earlier
        ? (await codes.revoke({ purpose: 'invite', payload: { email, role: 'owner' } })) > 0
        : false;
      const { code, expiresAt } = await codes.issue({
        purpose: 'invite',
        payload: { email, role: 'owner' },
        ttlSeconds: options.ttlSeconds ?? 7 * 24 * 3600,
      });
      await options.deliver?.({ client, tenantId, email, code, expiresAt });
      await client.query('COMMIT');
      const again = replaced ? { replaced } : {};
      return options.deliver
        ? { email, issued: true, ...again, delivered: true, expiresAt }
        : { email, issued: true, ...again, delivered: false, code, expiresAt };
    } catch (error) {
      failed = true;
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release(failed);
    }
  });
}
