import type pg from 'pg';
import { runAs } from '../context/tenant-context.js';
import { quoteIdent } from '../policy/identifiers.js';
import type { TenantEvent } from './tenant-event.js';

/** A tenant stream's head: its route and the seq of its last committed event. */
export interface StreamHead {
  route: string;
  lastSeq: number;
}

/**
 * What the event log needs of a pool: `query` (promise form) running each statement as the
 * tenant in context. A `TenantPool` (one database) and a `RoutedTenantPool` (each tenant where it
 * lives: shared tables, its own schema, its own database, on any cluster) both fit, and so does a
 * client checked out of either inside your transaction.
 */
export interface TenantQueryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors node-postgres' own signatures, which use any
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Options of {@link TenantEventLog}. */
export interface TenantEventLogOptions {
  /**
   * Schema of the event tables and of `emit_tenant_event`; default `public`. `null`: unqualified
   * names, resolved by the search path of each statement, so a schema-tier tenant reached through
   * a `RoutedTenantPool` (search path `t_acme`) uses its own schema's tables.
   */
  schema?: string | null;
  /**
   * With `schema: null`: the schema of `emit_tenant_event` (`liveSchemaSql({ followSearchPath:
   * true })` makes it in `public` of each database), named qualified because a schema-tier
   * tenant's search path holds its own schema alone. Default `public`.
   */
  functionSchema?: string;
}

// The tenant in context as the policy reads it (an InitPlan). Statements name it too, so the
// query guard passes them in enforce mode, and `tenant_id = $1` keeps even a pool that skipped
// RLS to the one tenant.
const TENANT = '(select tenantry.current_tenant_id())';

interface EventRow {
  seq: string;
  topic: string;
  payload: Record<string, unknown>;
  created_at: Date;
}

/**
 * Reads and appends a tenant's events (the tables of `liveSchemaSql`) through a TenantPool or a
 * RoutedTenantPool, always inside `runAs(tenant)`: PostgreSQL's policies decide what comes back.
 * Every method is one statement at a time (no transaction held), so a RoutedTenantPool may
 * refresh a stale route and retry each one (a refused statement did nothing).
 */
export class TenantEventLog {
  readonly #pool: TenantQueryable;
  readonly #streams: string;
  readonly #events: string;
  readonly #emit: string;

  constructor(pool: TenantQueryable, options: TenantEventLogOptions = {}) {
    const schema = options.schema === null ? '' : `${quoteIdent(options.schema ?? 'public', 'schema')}.`;
    this.#pool = pool;
    this.#streams = `${schema}tenant_event_streams`;
    this.#events = `${schema}tenant_events`;
    const emitSchema =
      options.schema === null ? `${quoteIdent(options.functionSchema ?? 'public', 'schema')}.` : schema;
    this.#emit = `${emitSchema}emit_tenant_event`;
  }

  /** The tenant's head, creating its stream row (and route) on first use. */
  head(tenantId: string): Promise<StreamHead> {
    return runAs(tenantId, async () => {
      const read = () =>
        this.#pool.query<{ route: string; last_seq: string }>(
          `select route, last_seq::text from ${this.#streams} where tenant_id = ${TENANT} and tenant_id = $1`,
          [tenantId],
        );
      let { rows } = await read();
      if (!rows[0]) {
        // a plain call, not the InitPlan: Citus refuses a sub-select in an INSERT ("subqueries are
        // not supported within INSERT queries"), and one VALUES row evaluates it once anyway
        await this.#pool.query(
          `insert into ${this.#streams} (tenant_id) values (tenantry.current_tenant_id()) on conflict (tenant_id) do nothing`,
        );
        ({ rows } = await read());
      }
      const row = rows[0];
      if (!row) throw new Error('The tenant event stream could not be opened');
      return { route: row.route, lastSeq: Number(row.last_seq) };
    });
  }

  /** Up to `limit` events of the tenant after `afterSeq`, in order. */
  readAfter(tenantId: string, afterSeq: number, limit: number): Promise<TenantEvent[]> {
    return runAs(tenantId, async () => {
      const { rows } = await this.#pool.query<EventRow>(
        `select e.seq::text as seq, e.topic, e.payload, e.created_at from ${this.#events} as e
          where e.tenant_id = ${TENANT} and e.tenant_id = $1 and e.seq > $2 order by e.seq limit $3`,
        [tenantId, afterSeq, limit],
      );
      return rows.map((r) =>
        Object.freeze({
          seq: Number(r.seq),
          topic: r.topic,
          payload: Object.freeze(r.payload),
          createdAt: r.created_at,
        }),
      );
    });
  }

  /**
   * Appends an event for the CURRENT tenant (call inside `runAs`) and returns its seq. Pass a
   * client inside your transaction to make the event part of it; the NOTIFY leaves at commit.
   */
  async append(
    topic: string,
    payload: Record<string, unknown> = {},
    db: TenantQueryable = this.#pool,
  ): Promise<number> {
    const { rows } = await db.query<{ seq: string }>(`select ${this.#emit}($1, $2::jsonb)::text as seq`, [
      topic,
      JSON.stringify(payload),
    ]);
    return Number(rows[0]!.seq);
  }
}
