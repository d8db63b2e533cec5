import pg from 'pg';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { quoteLiteral } from '../../policy/identifiers.js';
import type { PlacementTarget } from '../placements.js';
import { withDatabase } from '../provision.js';
import { MoveError } from './move-error.js';
import { ident, type MoveTable } from './move-tables.js';

/** How a move captures the changes made at the source while it copies. */
export type CaptureMode = 'triggers' | 'logical';

/** What a move records of its capture (`tenantry.moves.capture`). */
export interface MoveCapture {
  mode: CaptureMode;
  /** Logical capture: the publication at the source, the subscription at the target, the slot at the source. */
  publication?: string;
  subscription?: string;
  slot?: string;
}

/** Superuser (or REPLICATION + CREATE) connections per cluster, for `capture: 'logical'`. */
export interface ReplicationOptions {
  /**
   * One URL per cluster name (`{ home: 'postgres://postgres:…@db1/app', eu: … }`): a superuser
   * (PG 15; on 16+ a role with `pg_create_subscription`, CREATE on the database and REPLICATION).
   * Only host, port, user and password are used: the database is the placement's. The source's
   * URL is also the subscription's connection string, so it must be reachable from the target
   * server as written.
   */
  connections: Record<string, string>;
  /** How long the final sync may take while the tenant is frozen (default 30 s). */
  freezeTimeoutMs?: number;
  /**
   * How long the subscription may keep failing (its sync or apply error count grew and the move
   * still waits) before the move stops with MOVE_REPLICATION_FAILED (default 10 s). PostgreSQL
   * retries a failed apply by itself; one that keeps failing (a conflict at the target, a
   * missing column) needs a person, not a longer wait.
   */
  failAfterMs?: number;
}

/** The names of a move's publication, slot and subscription (one set per move, under 63 bytes). */
export function logicalNames(moveId: string): Required<Omit<MoveCapture, 'mode'>> {
  const name = `tenantry_move_${moveId.replaceAll('-', '')}`;
  return { publication: name, subscription: name, slot: name };
}

const fenceName = (moveId: string, op: 'i' | 'u' | 'd'): string => `tenantry_move_${moveId.replaceAll('-', '')}_f${op}`;

const unsupported = (message: string, details: Record<string, unknown> = {}, moveId?: string): MoveError =>
  new MoveError('MOVE_CAPTURE_UNSUPPORTED', message, { moveId, details });

/**
 * Refuses, before anything is recorded, a move that logical replication cannot carry: it maps
 * tables by schema-qualified name, so the source and the target must be the same tables in two
 * different databases (the shared and database tiers); a database cannot subscribe to itself.
 */
export function refuseLogicalPlacements(
  source: PlacementTarget,
  target: PlacementTarget,
  options: ReplicationOptions | undefined,
): void {
  if (source.tier === 'schema' || target.tier === 'schema') {
    throw unsupported(
      "capture 'logical' cannot move a tenant to or from the schema tier: logical replication pairs tables by schema-qualified name, and a tenant schema's tables have other names than the shared ones. Use capture 'triggers'",
      { source: source.tier, target: target.tier },
    );
  }
  if (source.cluster === target.cluster && (source.database ?? null) === (target.database ?? null)) {
    throw unsupported(
      "capture 'logical' needs the source and the target in different databases: a database cannot subscribe to its own tables. Use capture 'triggers'",
    );
  }
  for (const cluster of new Set([source.cluster, target.cluster])) {
    if (!options?.connections?.[cluster]) {
      throw unsupported(
        `capture 'logical' needs a replication connection for cluster ${cluster} (TenantMoverOptions.replication.connections, CLI --replication-url ${cluster}=URL)`,
        { cluster },
      );
    }
  }
}

/**
 * Logical replication as a move's change capture (PostgreSQL 15+): a publication at the source
 * for the moving tables with a row filter on the tenant column, a subscription at the target
 * (its initial sync, `copy_data`, is the bulk copy; then it streams the tenant's changes), and a
 * marker row (`tenantry_private.move_marks`, published with the tables) that tells when the
 * target has applied every change committed at the source before it.
 *
 * Also a fence at the source: three row triggers per table (the tenant's rows only) that take the
 * tenant's `local_tenants` row FOR SHARE, so the write freeze waits for the writes in flight and
 * every later one is refused (the same ordering as the capture triggers; they record nothing).
 *
 * Every method can run twice (resume after a crash) and `drop` removes whatever exists.
 */
export class LogicalCapture {
  readonly names: Required<Omit<MoveCapture, 'mode'>>;
  readonly #moveId: string;
  readonly #tenantId: string;
  readonly #source: pg.Pool;
  readonly #target: pg.Pool;
  readonly #conninfo: string;

  private constructor(moveId: string, tenantId: string, source: pg.Pool, target: pg.Pool, conninfo: string) {
    this.#moveId = moveId;
    this.#tenantId = tenantId;
    this.#source = source;
    this.#target = target;
    this.#conninfo = conninfo;
    this.names = logicalNames(moveId);
  }

  /**
   * Opens superuser pools on the source's and the target's databases (names read through the
   * owner pools, since a shared placement's database is the one in its cluster's owner URL).
   */
  static async open(
    move: { id: string; tenantId: string; source: PlacementTarget; target: PlacementTarget },
    owners: { source: pg.Pool; target: pg.Pool },
    options: ReplicationOptions | undefined,
  ): Promise<LogicalCapture> {
    refuseLogicalPlacements(move.source, move.target, options);
    const dbOf = async (where: PlacementTarget, owner: pg.Pool) =>
      where.database ?? (await owner.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    const [sourceDb, targetDb] = await Promise.all([
      dbOf(move.source, owners.source),
      dbOf(move.target, owners.target),
    ]);
    const sourceUrl = withDatabase(options!.connections[move.source.cluster]!, sourceDb);
    const pool = (url: string) => {
      const p = new pg.Pool({ connectionString: url, max: 2 });
      p.on('error', () => undefined);
      return p;
    };
    return new LogicalCapture(
      move.id,
      move.tenantId,
      pool(sourceUrl),
      pool(withDatabase(options!.connections[move.target.cluster]!, targetDb)),
      sourceUrl,
    );
  }

  async end(): Promise<void> {
    await Promise.all([this.#source.end(), this.#target.end()]);
  }

  /**
   * Refuses what logical replication cannot carry: a server before 15, a source without
   * `wal_level = logical`, a database without the fence (an older install), a table whose replica
   * identity does not cover the tenant column (PostgreSQL would then refuse every UPDATE and
   * DELETE of the table at the source, for every tenant, while the publication exists).
   */
  async check(tables: MoveTable[]): Promise<void> {
    const info = async (db: pg.Pool) =>
      (
        await db.query<{ version: number; wal: string; fence: boolean; marks: boolean }>(
          `select current_setting('server_version_num')::int as version, current_setting('wal_level') as wal,
                to_regprocedure('tenantry_private.fence_move_write()') is not null as fence,
                to_regclass('tenantry_private.move_marks') is not null as marks`,
        )
      ).rows[0]!;
    const [source, target] = await Promise.all([info(this.#source), info(this.#target)]);
    if (source.version < 150000 || target.version < 150000)
      throw unsupported(
        "capture 'logical' needs PostgreSQL 15 or later on both servers (row filters)",
        {},
        this.#moveId,
      );
    if (source.wal !== 'logical')
      throw unsupported(
        `capture 'logical' needs wal_level = logical at the source (it is ${source.wal})`,
        {},
        this.#moveId,
      );
    if (!source.fence || !source.marks || !target.marks)
      throw unsupported(
        "capture 'logical' needs a recent tenantry install in both databases: run tenantry install again",
        {},
        this.#moveId,
      );
    for (const t of tables) {
      const { rows } = await this.#source.query<{ ident: string; covered: boolean; columns: string[] }>(
        `select c.relreplident::text as ident,
                coalesce((select bool_or(a.attname = $2) from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                           where i.indrelid = c.oid and ((c.relreplident = 'd' and i.indisprimary) or (c.relreplident = 'i' and i.indisreplident))), false) as covered,
                (select array_agg(a.attname::text) from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '') as columns
           from pg_class c where c.oid = $1`,
        [t.sourceOid, t.tenantColumn],
      );
      const r = rows[0]!;
      if (r.ident !== 'f' && !r.covered) {
        throw unsupported(
          `Table ${t.name}: its replica identity does not include ${t.tenantColumn}, which the publication's row filter reads (make the primary key start with it, or use capture 'triggers')`,
          { table: t.name },
          this.#moveId,
        );
      }
      if (r.ident === 'f' && r.columns.length !== t.columns.length) {
        throw unsupported(
          `Table ${t.name} has REPLICA IDENTITY FULL and columns the target lacks: a publication column list must then cover every column`,
          { table: t.name },
          this.#moveId,
        );
      }
    }
  }

  /**
   * The fence triggers, the marker row, the publication, the slot and the subscription, each
   * created unless it exists. The publication carries inserts, updates and deletes only: a
   * TRUNCATE is not filtered by a row filter and would empty a shared target for every tenant.
   */
  async install(tables: MoveTable[]): Promise<void> {
    const { publication, slot, subscription } = this.names;
    const tenant = `${quoteLiteral(this.#tenantId)}::uuid`;
    const fn = `EXECUTE FUNCTION tenantry_private.fence_move_write(${quoteLiteral(this.#tenantId)})`;
    for (const t of tables) {
      const col = ident(t.tenantColumn);
      await this.#source.query(
        `create or replace trigger ${fenceName(this.#moveId, 'i')} after insert on ${t.source} for each row when (new.${col} = ${tenant}) ${fn};
         create or replace trigger ${fenceName(this.#moveId, 'u')} after update on ${t.source} for each row when (old.${col} = ${tenant} or new.${col} = ${tenant}) ${fn};
         create or replace trigger ${fenceName(this.#moveId, 'd')} after delete on ${t.source} for each row when (old.${col} = ${tenant}) ${fn};`,
      );
    }
    await this.#source.query(
      'insert into tenantry_private.move_marks (move_id) values ($1) on conflict (move_id) do nothing',
      [this.#moveId],
    );
    const exists = await this.#source.query('select from pg_publication where pubname = $1', [publication]);
    if (exists.rowCount === 0) {
      const columnsOf = new Map(
        (
          await this.#source.query<{ oid: number; columns: string[] }>(
            `select c.oid::int as oid, array_agg(a.attname::text) as columns from pg_class c join pg_attribute a on a.attrelid = c.oid
            where c.oid = any($1::oid[]) and a.attnum > 0 and not a.attisdropped and a.attgenerated = '' group by c.oid`,
            [tables.map((t) => t.sourceOid)],
          )
        ).rows.map((r) => [r.oid, r.columns]),
      );
      const members = tables.map((t) => {
        // a column list only when the source has columns the target lacks (the apply would fail on them)
        const list =
          columnsOf.get(t.sourceOid)!.length === t.columns.length ? '' : ` (${t.columns.map(ident).join(', ')})`;
        return `${t.source}${list} where (${ident(t.tenantColumn)} = ${tenant})`;
      });
      members.push(`tenantry_private.move_marks where (move_id = ${quoteLiteral(this.#moveId)}::uuid)`);
      await this.#source.query(
        `create publication ${ident(publication)} for table ${members.join(', ')} with (publish = 'insert, update, delete')`,
      );
    }
    // created here, not by CREATE SUBSCRIPTION: that would wait for its own transaction when
    // both databases are on one server; after the publication, which decoding must find
    const slots = await this.#source.query('select from pg_replication_slots where slot_name = $1', [slot]);
    if (slots.rowCount === 0)
      await this.#source.query(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [slot]);
    const subs = await this.#target.query(
      'select from pg_subscription where subname = $1 and subdbid = (select oid from pg_database where datname = current_database())',
      [subscription],
    );
    if (subs.rowCount === 0) {
      // the statement carries the source's password: keep it out of the target server's log
      // (log_statement, and the STATEMENT line of a failure); superuser-only settings
      const client = await this.#target.connect();
      try {
        // a role that is not a superuser (pg_create_subscription, PG 16+) may not change them
        await client
          .query(
            `set log_statement = 'none'; set log_min_error_statement = 'panic'; set log_min_duration_statement = -1`,
          )
          .catch((error) => {
            if (sqlStateOf(error) !== '42501') throw error;
          });
        await client.query(
          `create subscription ${ident(subscription)} connection ${quoteLiteral(this.#conninfo)} publication ${ident(publication)}
             with (create_slot = false, slot_name = ${quoteLiteral(slot)}, copy_data = true, enabled = true)`,
        );
      } finally {
        // a connection whose settings could not be reset is closed, not pooled
        client.release(
          await client
            .query('reset log_statement; reset log_min_error_statement; reset log_min_duration_statement')
            .then(
              () => undefined,
              (error: Error) => error,
            ),
        );
      }
    }
  }

  /** Tables of the subscription and how many are in sync ('r'), and its error count so far. */
  async syncState(): Promise<{ tables: number; ready: number; errors: number; states: Map<number, string> }> {
    const { rows } = await this.#target.query<{ relid: number; state: string; errors: number }>(
      `select r.srrelid::int as relid, r.srsubstate::text as state,
              coalesce((select st.apply_error_count + st.sync_error_count from pg_stat_subscription_stats st where st.subid = s.oid), 0)::int as errors
         from pg_subscription s join pg_subscription_rel r on r.srsubid = s.oid
        where s.subname = $1 and s.subdbid = (select oid from pg_database where datname = current_database())`,
      [this.names.subscription],
    );
    return {
      tables: rows.length,
      ready: rows.filter((r) => r.state === 'r').length,
      errors: rows[0]?.errors ?? 0,
      states: new Map(rows.map((r) => [r.relid, r.state])),
    };
  }

  /**
   * Bumps the marker at the source; once the target shows this value, every change committed at
   * the source before it has been applied (a subscription applies transactions in commit order).
   */
  async mark(): Promise<number> {
    const { rows } = await this.#source.query<{ n: string }>(
      'update tenantry_private.move_marks set n = n + 1 where move_id = $1 returning n',
      [this.#moveId],
    );
    if (!rows[0])
      throw new MoveError(
        'MOVE_REPLICATION_FAILED',
        'The move marker row is missing at the source: roll the move back and start again',
        { moveId: this.#moveId },
      );
    return Number(rows[0].n);
  }

  /**
   * Waits until the target has applied the marker value `n`; false after `timeoutMs`. Throws
   * MOVE_REPLICATION_FAILED once the subscription's error count has grown and it has still not
   * applied the marker `failAfterMs` later: waiting longer would not help.
   */
  async waitApplied(n: number, timeoutMs: number, failAfterMs = 10_000): Promise<boolean> {
    const baseline = (await this.syncState()).errors;
    let failingSince: number | undefined;
    let checked = performance.now();
    for (const deadline = performance.now() + timeoutMs; ;) {
      const { rows } = await this.#target.query<{ n: string }>(
        'select n from tenantry_private.move_marks where move_id = $1',
        [this.#moveId],
      );
      if (rows[0] && Number(rows[0].n) >= n) return true;
      const now = performance.now();
      if (now > deadline) return false;
      if (now - checked >= 250) {
        checked = now;
        if (failingSince === undefined && (await this.syncState()).errors > baseline) failingSince = now;
        if (failingSince !== undefined && now - failingSince > failAfterMs) {
          throw new MoveError(
            'MOVE_REPLICATION_FAILED',
            `The subscription ${this.names.subscription} keeps failing to apply the changes (see the target server's log): fix the cause and run the move again, or roll it back`,
            { moveId: this.#moveId },
          );
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Drops the subscription (and with it the slot and any table-sync slots at the source), the
   * publication, the fence triggers and the marker rows: whatever of them exists.
   */
  async drop(): Promise<void> {
    const { publication, slot, subscription } = this.names;
    // a target database that does not exist (a move never prepared) has no subscription
    const missing = (error: unknown) => {
      if (sqlStateOf(error) !== '3D000') throw error;
      return undefined;
    };
    const sub = await this.#target
      .query<{ oid: number }>(
        'select oid::int as oid from pg_subscription where subname = $1 and subdbid = (select oid from pg_database where datname = current_database())',
        [subscription],
      )
      .then((r) => r.rows[0], missing);
    if (sub) {
      try {
        await this.#target.query(`drop subscription if exists ${ident(subscription)}`);
      } catch {
        // the source unreachable from the target: detach the slot, drop it below from here
        await this.#target.query(`alter subscription ${ident(subscription)} disable`);
        await this.#target.query(`alter subscription ${ident(subscription)} set (slot_name = none)`);
        await this.#target.query(`drop subscription if exists ${ident(subscription)}`);
      }
    }
    const prefix = sub ? `pg_${sub.oid}_sync_` : null;
    for (const deadline = performance.now() + 30_000; ;) {
      const { rows } = await this.#source.query<{ slot_name: string; active: boolean }>(
        'select slot_name::text, active from pg_replication_slots where slot_name = $1 or ($2::text is not null and starts_with(slot_name::text, $2))',
        [slot, prefix],
      );
      if (rows.length === 0) break;
      for (const r of rows.filter((x) => !x.active)) {
        await this.#source.query('select pg_drop_replication_slot($1)', [r.slot_name]).catch((error) => {
          if (sqlStateOf(error) !== '42704' && sqlStateOf(error) !== '55006') throw error; // gone, or active again
        });
      }
      if (performance.now() > deadline)
        throw new MoveError(
          'MOVE_REPLICATION_FAILED',
          `Replication slot ${rows[0]!.slot_name} at the source stays active: drop it by hand`,
          { moveId: this.#moveId },
        );
      if (rows.some((x) => x.active)) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.#source.query(`drop publication if exists ${ident(publication)}`);
    const { rows } = await this.#source.query<{ name: string; tbl: string }>(
      `select t.tgname::text as name, format('%I.%I', n.nspname, c.relname) as tbl
         from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
        where t.tgname::text = any($1)`,
      [(['i', 'u', 'd'] as const).map((op) => fenceName(this.#moveId, op))],
    );
    for (const r of rows) await this.#source.query(`drop trigger if exists ${ident(r.name)} on ${r.tbl}`);
    await this.#source.query('delete from tenantry_private.move_marks where move_id = $1', [this.#moveId]);
    await this.#target
      .query('delete from tenantry_private.move_marks where move_id = $1', [this.#moveId])
      .catch(missing);
  }
}
