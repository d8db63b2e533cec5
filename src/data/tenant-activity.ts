/** One tenant's use of the database as its pools measured it, since the counters were last taken. */
export interface TenantActivityRow {
  /** Tenant id, or '' for statements without a tenant. */
  tenantId: string;
  /** Wall time of its statements, from send to answer (ms): its share of the database's time. */
  dbTimeMs: number;
  statements: number;
  /** Rows returned or changed (pg's rowCount). */
  rows: number;
  /** Statements that failed (any error, timeouts included). */
  errors: number;
  /** Statements cancelled by statement_timeout or refused by lock_timeout. */
  timeouts: number;
  /** Connections checked out by the pool for it (statements or transactions). */
  checkouts: number;
  /** Checkouts that had to wait for a connection, and the total wait (ms). */
  waits: number;
  waitMs: number;
  /** Connections it holds right now. */
  connections: number;
}

function emptyRow(tenantId: string): TenantActivityRow {
  return {
    tenantId,
    dbTimeMs: 0,
    statements: 0,
    rows: 0,
    errors: 0,
    timeouts: 0,
    checkouts: 0,
    waits: 0,
    waitMs: 0,
    connections: 0,
  };
}

/**
 * An in-process table of what each tenant did in the database through the pools that share it
 * (`TenantPool`'s `activity` option): DB time, statements, rows, errors, timeouts, checkouts,
 * waits and the connections held now. No extension, no query: the pool knows each statement's
 * tenant and times it. One row per active tenant, dropped when taken while idle.
 *
 * @example
 * const activity = new TenantActivity();
 * const pool = new TenantPool({ connectionString, contextSecret, activity });
 * setInterval(() => console.table(activity.take()), 60_000);
 */
export class TenantActivity {
  readonly #rows = new Map<string, TenantActivityRow>();
  #since = Date.now();
  #watchedUntil = 0;

  /**
   * True while someone watches the live activity (`tenantry tenants top`, the console's top page):
   * pools with `activityTag: 'watched'` tag their statements only then. Kept up to date by
   * {@link publishTenantActivity}, which polls `tenantry_private.activity_watch`.
   */
  get watched(): boolean {
    return this.#watchedUntil > Date.now();
  }

  /** Watched until `untilMs` (Date.now() ms; 0: not watched). */
  watchUntil(untilMs: number): void {
    this.#watchedUntil = Number.isFinite(untilMs) ? untilMs : 0;
  }

  /** When the current window began (Date.now() ms). */
  get since(): number {
    return this.#since;
  }

  #row(tenantId: string): TenantActivityRow {
    let row = this.#rows.get(tenantId);
    if (!row) {
      row = emptyRow(tenantId);
      this.#rows.set(tenantId, row);
    }
    return row;
  }

  /** Records one statement of `tenantId` that took `ms`. */
  statement(tenantId: string, ms: number, rows: number, failure: 'error' | 'timeout' | undefined): void {
    const row = this.#row(tenantId);
    row.dbTimeMs += ms;
    row.statements++;
    row.rows += rows;
    if (failure !== undefined) {
      row.errors++;
      if (failure === 'timeout') row.timeouts++;
    }
  }

  /** Records a checkout that waited `waitedMs` (0: a connection was free). */
  checkedOut(tenantId: string, waitedMs: number): void {
    const row = this.#row(tenantId);
    row.checkouts++;
    row.connections++;
    if (waitedMs > 0) {
      row.waits++;
      row.waitMs += waitedMs;
    }
  }

  /** Records a waiting checkout that failed (a timeout, an abort). */
  waitFailed(tenantId: string, waitedMs: number): void {
    const row = this.#row(tenantId);
    row.waits++;
    row.waitMs += waitedMs;
  }

  /** Records a connection given back. */
  checkedIn(tenantId: string): void {
    const row = this.#rows.get(tenantId);
    if (row && row.connections > 0) row.connections--;
  }

  /** The counters since the window began, busiest (DB time) first, without resetting them. */
  snapshot(): TenantActivityRow[] {
    return [...this.#rows.values()].map((r) => ({ ...r })).sort((a, b) => b.dbTimeMs - a.dbTimeMs);
  }

  /**
   * The counters since the window began, busiest first, and a new window: counters back to zero
   * (connections held stay), idle tenants dropped.
   */
  take(): { since: number; until: number; rows: TenantActivityRow[] } {
    const rows = this.snapshot();
    const since = this.#since;
    this.#since = Date.now();
    for (const [id, row] of this.#rows) {
      if (row.connections === 0) this.#rows.delete(id);
      else Object.assign(row, emptyRow(id), { connections: row.connections });
    }
    return { since, until: this.#since, rows };
  }
}
