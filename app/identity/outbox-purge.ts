import type pg from 'pg';
import type { PurgeParticipant } from 'tenantry/lifecycle';

/**
 * The purge's part for the reference server's outbox (`app_private.outbox`, migration 012): the
 * mail written about a tenant — its members' addresses, invitation and confirmation codes — goes
 * with the tenant, and so do the address confirmations those invitations issued. Named as the
 * outbox's purger (`tables`), so the purge's scan for unpurged `tenant_id` tables passes it; a
 * purge without this participant is refused (PURGE_UNACCOUNTED_TABLES) rather than leave the mail.
 *
 * @param db the home database as the owner role (app_private is the owner's).
 */
export function outboxPurgeParticipant(db: Pick<pg.Pool, 'query'>): PurgeParticipant {
  return {
    name: 'outbox',
    tables: ['app_private.outbox'],
    async plan(tenantId) {
      const { rows } = await db.query<{ n: number }>(
        'select count(*)::int as n from app_private.outbox where tenant_id = $1',
        [tenantId],
      );
      return rows[0]!.n;
    },
    async purge(tenantId) {
      // one statement: the confirmations of the tenant's invitations, then its mail (idempotent)
      const { rows } = await db.query<{ n: number }>(
        `with confirmations as (
           delete from app_private.address_confirmations c
            where c.invitation in (select o.invitation from app_private.outbox o
                                    where o.tenant_id = $1 and o.invitation is not null)
         ), mail as (
           delete from app_private.outbox where tenant_id = $1 returning 1
         )
         select count(*)::int as n from mail`,
        [tenantId],
      );
      return rows[0]!.n;
    },
  };
}
