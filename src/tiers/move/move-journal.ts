import pg from 'pg';
import { toTenantId } from '../../context/tenant-id.js';
import { MoveError } from './move-error.js';
import { MOVE_COLUMNS, toMoveRecord, type MoveRecord, type MoveStep } from './move-record.js';

/**
 * `tenantry.moves` in the home catalog: each move's record, its steps as they are done, its last
 * error, and the lock that lets one runner at a time work on a move.
 */
export class MoveJournal {
  constructor(
    private readonly catalog: pg.Pool,
    private readonly onStep: (step: MoveStep, move: MoveRecord) => void | Promise<void>,
  ) {}

  /** The move record. */
  async get(id: string): Promise<MoveRecord> {
    const { rows } = await this.catalog.query(`select ${MOVE_COLUMNS} from tenantry.moves where id = $1`, [
      toTenantId(id),
    ]);
    if (!rows[0]) throw new MoveError('MOVE_NOT_FOUND', 'No such move', { moveId: id });
    return toMoveRecord(rows[0]);
  }

  /** The tenant's move that has not switched or rolled back yet, if any. */
  async openMove(tenant: string): Promise<MoveRecord | undefined> {
    const { rows } = await this.catalog.query(
      `select ${MOVE_COLUMNS} from tenantry.moves where tenant_id = $1 and step not in ('done', 'cleaned', 'rolled_back')`,
      [toTenantId(tenant)],
    );
    return rows[0] ? toMoveRecord(rows[0]) : undefined;
  }

  /** Records a step reached (with other columns), returning the record as stored. */
  async record(move: MoveRecord, step: MoveStep, fields: Record<string, unknown> = {}): Promise<MoveRecord> {
    const names = Object.keys(fields);
    const { rows } = await this.catalog.query(
      `update tenantry.moves set step = $2, updated_at = now()${names.map((n, i) => `, ${n} = $${i + 3}`).join('')} where id = $1 returning ${MOVE_COLUMNS}`,
      [move.id, step, ...names.map((n) => fields[n])],
    );
    return toMoveRecord(rows[0]!);
  }

  /** Records a step done and tells `onStep` (tests kill the process there). */
  async advance(move: MoveRecord, step: MoveStep, fields: Record<string, unknown> = {}): Promise<MoveRecord> {
    const recorded = await this.record(move, step, fields);
    await this.onStep(step, recorded);
    return recorded;
  }

  /** Tells `onStep` about a step without recording it (the freeze, once it holds). */
  async reached(step: MoveStep, move: MoveRecord): Promise<void> {
    await this.onStep(step, move);
  }

  /** Records where the bulk copy has got to. */
  async saveCursor(id: string, cursor: unknown): Promise<void> {
    await this.catalog.query('update tenantry.moves set cursor = $2, updated_at = now() where id = $1', [id, cursor]);
  }

  /** Records a run's error on the move (best effort: the error itself is what the caller sees). */
  async recordError(id: string, error: unknown): Promise<void> {
    await this.catalog
      .query('update tenantry.moves set error = $2, updated_at = now() where id = $1', [
        id,
        String((error as Error)?.message ?? error).slice(0, 1000),
      ])
      .catch(() => undefined);
  }

  // One runner per move at a time, across processes: a session advisory lock, released by a crash
  // too. Its own connection, not one of the catalog pool's: Placements.assign holds one of those.
  async locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const client = new pg.Client((this.catalog as pg.Pool & { options: pg.ClientConfig }).options);
    client.on('error', () => undefined);
    await client.connect();
    try {
      // a killed runner's session may take a moment to end: wait a little before calling it busy
      let ok = false;
      for (const deadline = performance.now() + 5000; !ok;) {
        const { rows } = await client.query<{ ok: boolean }>(
          `select pg_try_advisory_lock(hashtextextended('tenantry.move:' || $1, 0)) as ok`,
          [id],
        );
        ok = rows[0]!.ok;
        if (ok || performance.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (!ok) throw new MoveError('MOVE_BUSY', 'Another process is running this move', { moveId: id });
      try {
        return await fn();
      } finally {
        await client.query(`select pg_advisory_unlock(hashtextextended('tenantry.move:' || $1, 0))`, [id]);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
