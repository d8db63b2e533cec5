import type pg from 'pg';
import { encodeCursor, type KeysetCursor } from '../http/keyset-cursor.js';

/**
 * What the store sends its statements through: a TenantPool, a RoutedTenantPool (each tenant's
 * statements go to its placement) or a client inside a transaction.
 */
export interface DataPool {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' QueryResultRow default (any)
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** A recording as the API shows it. */
export interface Recording {
  id: string;
  ownerId: string;
  title: string;
  durationSeconds: number;
  mimeType: string;
  createdAt: string;
  updatedAt: string;
}

/** Fields of a new recording; the tenant comes from the context, the owner from the caller. */
export interface NewRecording {
  title: string;
  durationSeconds: number;
  mimeType: string;
}

interface RecordingRow {
  id: string;
  owner_id: string;
  title: string;
  duration_seconds: number;
  mime_type: string;
  created_at: Date;
  updated_at: Date;
  micros: string;
}

// micros: created_at in whole microseconds since the epoch, exact (a JavaScript Date keeps milliseconds).
// Through an interval: extract() of a timestamptz is STABLE, of an interval IMMUTABLE, and Citus
// allows only IMMUTABLE functions in a RETURNING clause (the value is the same)
const COLUMNS = `id, owner_id, title, duration_seconds, mime_type, created_at, updated_at,
  (extract(epoch from created_at - '1970-01-01 00:00:00+00'::timestamptz) * 1000000)::bigint::text as micros`;

// The tenant in context, as PostgreSQL's policy reads it: an InitPlan, evaluated once per statement
const TENANT = '(select tenantry.current_tenant_id())';

/**
 * Data access for recordings. Every statement goes through the tenant pool, so the tenant
 * comes from `runAs` and PostgreSQL's policies: a row of another tenant is simply not there.
 * Each statement also names the tenant in context itself (`tenant_id = (select
 * tenantry.current_tenant_id())`), so the query guard passes it in `enforce` mode and it stays
 * scoped even where RLS would not apply.
 */
export class RecordingStore {
  constructor(private readonly db: DataPool) {}

  async create(ownerId: string, input: NewRecording): Promise<Recording> {
    // the plain call, not the sub-select: one VALUES row evaluates it once anyway, and Citus
    // refuses subqueries in an INSERT ("subqueries are not supported within INSERT queries")
    const { rows } = await this.db.query<RecordingRow>(
      `insert into recordings (tenant_id, owner_id, title, duration_seconds, mime_type) values (tenantry.current_tenant_id(), $1, $2, $3, $4) returning ${COLUMNS}`,
      [ownerId, input.title, input.durationSeconds, input.mimeType],
    );
    return toRecording(rows[0]!);
  }

  async find(id: string): Promise<Recording | undefined> {
    const { rows } = await this.db.query<RecordingRow>(
      `select ${COLUMNS} from recordings where tenant_id = ${TENANT} and id = $1`,
      [id],
    );
    return rows[0] && toRecording(rows[0]);
  }

  /** Newest first; `after` is the decoded `nextCursor` of the previous page. */
  async list(limit: number, after?: KeysetCursor): Promise<{ items: Recording[]; nextCursor: string | null }> {
    const { rows } = after
      ? await this.db.query<RecordingRow>(
          `select ${COLUMNS} from recordings
            where tenant_id = ${TENANT}
              and (created_at, id) < (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid)
            order by created_at desc, id desc limit $1`,
          [limit + 1, after.micros, after.id],
        )
      : await this.db.query<RecordingRow>(
          `select ${COLUMNS} from recordings where tenant_id = ${TENANT} order by created_at desc, id desc limit $1`,
          [limit + 1],
        );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map(toRecording),
      nextCursor: rows.length > limit && last ? encodeCursor(last.micros, last.id) : null,
    };
  }

  /** Changes the given fields; undefined when the recording is not there. */
  async update(id: string, changes: Partial<NewRecording>): Promise<Recording | undefined> {
    const { rows } = await this.db.query<RecordingRow>(
      `update recordings
          set title = coalesce($2, title),
              duration_seconds = coalesce($3, duration_seconds),
              mime_type = coalesce($4, mime_type),
              updated_at = now()
        where tenant_id = ${TENANT} and id = $1
        returning ${COLUMNS}`,
      [id, changes.title ?? null, changes.durationSeconds ?? null, changes.mimeType ?? null],
    );
    return rows[0] && toRecording(rows[0]);
  }

  /** True when a recording was deleted. */
  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query(`delete from recordings where tenant_id = ${TENANT} and id = $1`, [id]);
    return rowCount === 1;
  }
}

function toRecording(row: RecordingRow): Recording {
  return {
    id: row.id,
    ownerId: row.owner_id,
    title: row.title,
    durationSeconds: row.duration_seconds,
    mimeType: row.mime_type,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
  };
}
