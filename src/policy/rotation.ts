import type pg from 'pg';
import type { Queryable } from '../catalog/tenant-catalog.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent, quoteLiteral } from './identifiers.js';
import { INSTALL_LOCK_SQL } from './install-sql.js';
import { checkedPads } from './installer.js';

/** Options of {@link rotateContextSecret}. */
export interface RotateContextSecretOptions {
  /**
   * How long values signed with the previous secret keep verifying, in seconds: long enough to
   * roll every app instance over to the new secret (and more than the pool's context TTL,
   * 300 s by default). Default 900 (15 minutes).
   */
  overlapSeconds?: number;
}

/** What {@link rotateContextSecret} did. */
export interface ContextSecretRotation {
  /** False when the new secret already was the current one (nothing changed). */
  rotated: boolean;
  /** Until when the previous secret verifies (undefined when nothing rotated). */
  previousUntil: Date | undefined;
}

/**
 * Makes `secret` the signed-mode key of one database and keeps the current key as the previous
 * one for `overlapSeconds`: during the overlap PostgreSQL accepts values signed with either, so
 * app instances still signing with the old secret keep working while the new secret rolls out.
 * Run it against every database Tenantry is installed in (`tenantry rotate context-secret
 * --everywhere`), then restart the app with the new secret before the overlap ends. It runs a
 * transaction of its own (BEGIN … COMMIT): give it a client outside a transaction, or a pool.
 *
 * @example
 * await rotateContextSecret(adminPool, process.env.TENANTRY_NEW_CONTEXT_SECRET!, { overlapSeconds: 900 });
 */
export async function rotateContextSecret(
  admin: Queryable,
  secret: string,
  options: RotateContextSecretOptions = {},
): Promise<ContextSecretRotation> {
  const overlap = options.overlapSeconds ?? 900;
  if (!Number.isInteger(overlap) || overlap < 0 || overlap > 7 * 24 * 3600)
    throw new ConfigurationError('overlapSeconds must be a whole number of seconds from 0 to 604800 (a week)');
  const { ipad, opad } = checkedPads(secret);
  // the lock in a statement of its own, in the rotation's transaction: joined into the UPDATE (a
  // CTE), Citus materialises it before updating the reference table and refuses its void column
  // (42P16 "column pg_advisory_xact_lock has pseudo-type void")
  const pooled = typeof (admin as Partial<pg.Pool>).totalCount === 'number';
  const client = pooled ? await (admin as pg.Pool).connect() : admin;
  let rows: { rotated: boolean; previous_until: Date | null }[];
  try {
    await client.query('BEGIN');
    try {
      await client.query(INSTALL_LOCK_SQL);
      ({ rows } = await client.query<{ rotated: boolean; previous_until: Date | null }>(
        `update tenantry_private.context_key k
            set previous_ipad = k.ipad, previous_opad = k.opad,
                previous_until = now() + make_interval(secs => $3),
                ipad = $1, opad = $2, created_at = now()
          where k.id and (k.ipad <> $1 or k.opad <> $2)
          returning true as rotated, k.previous_until`,
        [ipad, opad, overlap],
      ));
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    if (pooled) (client as pg.PoolClient).release();
  }
  if (rows.length === 0) {
    const present = await admin.query('select 1 from tenantry_private.context_key');
    if (present.rowCount === 0)
      throw new ConfigurationError('No context key is installed here: run tenantry install with the secret first');
    return { rotated: false, previousUntil: undefined };
  }
  return { rotated: true, previousUntil: rows[0]!.previous_until ?? undefined };
}

/**
 * Sets a login role's password (`tenantry rotate password`). PostgreSQL keeps one password per
 * role: connections already open stay open, new ones need the new password at once, so restart
 * (or reconfigure) the app right after. Never printed.
 */
export async function rotatePassword(admin: Queryable, role: string, password: string): Promise<void> {
  if (typeof password !== 'string' || password.length < 16)
    throw new ConfigurationError('A role password must be at least 16 characters');
  await admin.query(`ALTER ROLE ${quoteIdent(role, 'role')} PASSWORD ${quoteLiteral(password)}`);
}
