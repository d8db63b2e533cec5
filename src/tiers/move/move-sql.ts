import { libraryMigrations, renderMigration } from '../../policy/library-migrations.js';

/**
 * The moves part of `tenantry install` (the `move` feature's library migrations,
 * src/tiers/move/migrations/), run in every database Tenantry is installed in:
 *
 * - `tenantry.moves` (meaningful in the home database, next to the placements): one row per
 *   online move of a tenant, with the step it has completed, its copy cursor and its error, so a
 *   move killed at any step continues or rolls back on the next run. At most one open move per
 *   tenant. The app role cannot see it.
 * - `tenantry_private.move_changes` and `tenantry_private.capture_move_change()` (in every
 *   database a tenant can move out of): the trigger-based change capture. A move installs
 *   triggers on the source tables that call it for the moving tenant's rows only; it records the
 *   primary key of each changed row, and the mover re-reads the row's current state from the
 *   source when it applies the delta, so order and duplicates do not matter.
 *
 * - `tenantry_private.move_marks` and `tenantry_private.fence_move_write()`: the logical
 *   replication capture (`capture: 'logical'`, PG 15+): a marker row per move published with the
 *   moving tables (its value seen at the target means every earlier change was applied), and
 *   the fence triggers' function (the lock and the refusal below, nothing recorded).
 *
 * The capture function also takes the tenant's `tenantry.local_tenants` row FOR SHARE and
 * refuses the write unless the tenant is active here: the mover's freeze (an UPDATE of that row)
 * therefore waits for every write already in flight to commit, and every later write sees the
 * freeze (TR004, retried by the pool) — no write can slip past the final sync.
 */
export function moveSql(roles: { appRole: string }): string {
  return libraryMigrations()
    .filter((m) => m.feature === 'move')
    .map((m) => renderMigration(m, { appRole: roles.appRole, ownerRole: roles.appRole }))
    .join('\n');
}
