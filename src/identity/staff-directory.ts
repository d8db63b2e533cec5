import type { Queryable } from '../catalog/tenant-catalog.js';
import { isTenantId } from '../context/tenant-id.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';

/**
 * The control plane's list of staff (owner role): who may open staff sessions. Disabling a staff
 * member ends their sessions' access at once (every check joins this table).
 *
 * @example
 * await new StaffDirectory(ownerPool).add(userId);
 */
export class StaffDirectory {
  constructor(private readonly db: Queryable) {}

  async add(userId: string): Promise<void> {
    if (!isTenantId(userId)) throw new InvalidArgumentError('userId must be a uuid', 'userId');
    await this.db.query(
      `insert into tenantry_private.staff (user_id) values ($1)
       on conflict (user_id) do update set disabled_at = null`,
      [userId],
    );
  }

  async disable(userId: string): Promise<boolean> {
    if (!isTenantId(userId)) return false;
    const { rowCount } = await this.db.query(
      'update tenantry_private.staff set disabled_at = now() where user_id = $1 and disabled_at is null',
      [userId],
    );
    return rowCount === 1;
  }

  async isActive(userId: string): Promise<boolean> {
    if (!isTenantId(userId)) return false;
    const { rowCount } = await this.db.query(
      'select from tenantry_private.staff where user_id = $1 and disabled_at is null',
      [userId],
    );
    return rowCount === 1;
  }
}
