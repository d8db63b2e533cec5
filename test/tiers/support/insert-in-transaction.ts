import type pg from 'pg';
import { runAs } from '../../../src/context/tenant-context.js';

/**
 * As `tenant`, one row into `notes` inside BEGIN … COMMIT on a connection of `pool` (rolled back
 * and rethrown on failure): what an app's transaction sends through a RoutedTenantPool.
 */
export function insertInTransaction(
  pool: { connect(): Promise<pg.PoolClient> },
  tenant: string,
  body: string,
): Promise<void> {
  return runAs(tenant, async () => {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query('insert into notes (body) values ($1)', [body]);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  });
}
