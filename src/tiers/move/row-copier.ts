import type pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { ident, type MoveTable } from './move-tables.js';

/** A table's checksum over one tenant's rows: count and a sum of 64-bit row hashes. */
export interface TableChecksum {
  rows: number;
  hash: string;
}

const keyList = (t: MoveTable, alias: string): string => t.key.map((k) => `${alias}.${ident(k)}`).join(', ');
/** The primary key of row `alias` as a JSON object (the form cursors, cuts and captured changes take). */
const keyObject = (t: MoveTable, alias: string): string =>
  `jsonb_build_object(${t.key.map((k) => `'${k.replaceAll("'", "''")}', ${alias}.${ident(k)}`).join(', ')})`;
/**
 * `t.key <op> the key in a JSON parameter`, written so that a B-tree range scan can start at the
 * bound: when the key begins with the tenant column (whose equality the query already states),
 * the comparison leaves it out — a row comparison that includes it makes PostgreSQL 15 start the
 * scan at the tenant's first entry and filter up to the bound, so each batch of a copy, and each
 * key range of a verification, would read the tenant's index from its beginning.
 */
function keyBound(t: MoveTable, alias: string, op: '>' | '>=' | '<', param: string, rowType: string): string {
  const cols = t.key[0] === t.tenantColumn && t.key.length > 1 ? t.key.slice(1) : t.key;
  const left = cols.map((k) => `${alias}.${ident(k)}`).join(', ');
  const right = cols.map((k) => `b.${ident(k)}`).join(', ');
  const bound = `(select ${right} from jsonb_populate_record(null::${rowType}, ${param}::jsonb) b)`;
  return cols.length === 1 ? `${left} ${op} ${bound}` : `(${left}) ${op} ${bound}`;
}

const keyMatch = (t: MoveTable, a: string, b: string): string =>
  t.key.map((k) => `${a}.${ident(k)} = ${b}.${ident(k)}`).join(' and ');

/**
 * Reads and writes one table's rows of one tenant for a move, as the owner role (no RLS), rows
 * travelling as JSON between databases. Every write is an upsert or a delete keyed by primary
 * key and restricted to the tenant: running any of them twice changes nothing, and another
 * tenant's rows are never touched.
 */
export class RowCopier {
  constructor(
    private readonly table: MoveTable,
    private readonly tenantId: string,
  ) {}

  /** The tenant's rows at the source after `after` (a primary key as JSON), in key order. */
  async readBatch(
    source: Queryable,
    after: Record<string, unknown> | null,
    limit: number,
  ): Promise<{ count: number; rows: string; last: Record<string, unknown> | null }> {
    const t = this.table;
    const cursor = after ? `and ${keyBound(t, 't', '>', '$2', t.source)}` : 'and $2::jsonb is null';
    const { rows } = await source.query<{ count: number; rows: string; last: Record<string, unknown> | null }>(
      `with b as materialized (
         select t.* from ${t.source} t where t.${ident(t.tenantColumn)} = $1 ${cursor} order by ${keyList(t, 't')} limit $3)
       select count(*)::int as count, coalesce(jsonb_agg(to_jsonb(b)), '[]')::text as rows,
              (select ${keyObject(t, 'l')}
                 from b l order by ${t.key.map((k) => `l.${ident(k)} desc`).join(', ')} limit 1) as last
         from b`,
      [this.tenantId, after ? JSON.stringify(after) : null, limit],
    );
    return rows[0]!;
  }

  /** The tenant's current rows at the source for these primary keys (JSON array text) and how many there are. */
  async readKeys(source: Queryable, keys: string): Promise<{ count: number; rows: string }> {
    const t = this.table;
    const { rows } = await source.query<{ count: number; rows: string }>(
      `select count(*)::int as count, coalesce(jsonb_agg(to_jsonb(t)), '[]')::text as rows
         from ${t.source} t join jsonb_populate_recordset(null::${t.source}, $2::jsonb) k on ${keyMatch(t, 't', 'k')}
        where t.${ident(t.tenantColumn)} = $1`,
      [this.tenantId, keys],
    );
    return rows[0]!;
  }

  /** Inserts or updates rows (JSON array text) at the target; returns how many were written. */
  async upsert(target: Queryable, rows: string): Promise<number> {
    const t = this.table;
    const cols = t.columns.map(ident).join(', ');
    const rest = t.columns.filter((c) => !t.key.includes(c));
    const onConflict =
      rest.length === 0
        ? 'do nothing'
        : `do update set ${rest.map((c) => `${ident(c)} = excluded.${ident(c)}`).join(', ')} where d.${ident(t.tenantColumn)} = excluded.${ident(t.tenantColumn)}`;
    const result = await target.query(
      `insert into ${t.target} as d (${cols}) overriding system value
       select ${cols} from jsonb_populate_recordset(null::${t.target}, $2::jsonb) r where r.${ident(t.tenantColumn)} = $1
       on conflict (${t.key.map(ident).join(', ')}) ${onConflict}`,
      [this.tenantId, rows],
    );
    return result.rowCount ?? 0;
  }

  /** Deletes at the target the tenant's rows with these keys that are absent from `present` (JSON array texts). */
  async deleteMissing(target: Queryable, keys: string, present: string): Promise<number> {
    const t = this.table;
    const cols = t.key.map(ident).join(', ');
    // the keys gone from the source first (a small set), then a delete by primary key: an anti-join
    // of the target against the present rows lets the planner pick a nested loop over the whole
    // tenant once the target is analyzed (seconds to minutes per batch under load)
    const result = await target.query(
      `with gone as materialized (
         select ${cols} from jsonb_populate_recordset(null::${t.target}, $2::jsonb)
         except
         select ${cols} from jsonb_populate_recordset(null::${t.target}, $3::jsonb))
       delete from ${t.target} t using gone g where ${keyMatch(t, 't', 'g')} and t.${ident(t.tenantColumn)} = $1`,
      [this.tenantId, keys, present],
    );
    return result.rowCount ?? 0;
  }

  /** Deletes up to `limit` of the tenant's rows from `table` (source or target side); returns how many. */
  async deleteSome(db: Queryable, side: 'source' | 'target', limit: number): Promise<number> {
    const name = this.table[side];
    const result = await db.query(
      `delete from ${name} where ctid = any(array(select ctid from ${name} where ${ident(this.table.tenantColumn)} = $1 limit $2))`,
      [this.tenantId, limit],
    );
    return result.rowCount ?? 0;
  }

  /** Rows of the tenant in the table (source or target side). */
  async count(db: Queryable, side: 'source' | 'target'): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from ${this.table[side]} where ${ident(this.table.tenantColumn)} = $1`,
      [this.tenantId],
    );
    return rows[0]!.n;
  }

  /**
   * The tenant's rows at the source up to and including `through` (a primary key as JSON): how
   * far a copy that has written up to that key has got, whatever earlier attempts wrote.
   */
  async countThrough(source: Queryable, through: Record<string, unknown>): Promise<number> {
    const t = this.table;
    const { rows } = await source.query<{ n: number }>(
      `select count(*)::int as n from ${t.source} t
        where t.${ident(t.tenantColumn)} = $1 and not ${keyBound(t, 't', '>', '$2', t.source)}`,
      [this.tenantId, JSON.stringify(through)],
    );
    return rows[0]!.n;
  }

  /**
   * Count and checksum of the tenant's rows: the sum of a 64-bit hash of each row's copied
   * columns (sorted by name), so it does not depend on scan order or column order. Per-type
   * binary hashes when every column type has one, else (or with `textHash`) the row's text.
   */
  async checksum(
    db: pg.Pool,
    side: 'source' | 'target',
    textHash = false,
  ): Promise<TableChecksum & { textHash: boolean }> {
    const t = this.table;
    const { sums, textHash: text } = await this.#hashed(db, textHash, false, (h) => ({
      sql: `select 0 as i, count(*)::int as n, ${h}::text as h from ${t[side]} t where t.${ident(t.tenantColumn)} = $1`,
      params: [],
    }));
    return { rows: sums[0]!.rows, hash: sums[0]!.hash, textHash: text };
  }

  /**
   * Count and checksum (as {@link checksum}) of each of these key ranges (see {@link rangeCuts}),
   * in one statement: one snapshot, one index range scan per range. In the order asked.
   *
   * `exclude` leaves keys out of every range's sums. `{ pendingOf }` (the source): the keys of the
   * move's changes not yet applied, read in the statement's own snapshot, and returned as
   * `pending` (JSON array text); `{ keys }` (the target): those keys. The target holds, for every
   * other key, what the source held at that snapshot, so that the two sums match exactly while
   * the tenant writes on: what is in flight is left out, and checked by key later.
   */
  async checksumRanges(
    db: pg.Pool,
    side: 'source' | 'target',
    cuts: string[],
    ranges: number[],
    textHash = false,
    exclude?: { pendingOf: { moveId: string; relid: number } } | { keys: string },
  ): Promise<{ sums: TableChecksum[]; textHash: boolean; pending?: string }> {
    if (ranges.length === 0)
      return { sums: [], textHash, pending: exclude && 'keys' in exclude ? exclude.keys : undefined };
    const t = this.table;
    const name = t[side];
    const tenant = `t.${ident(t.tenantColumn)} = $1`;
    const { sums, textHash: text } = await this.#hashed(db, textHash, true, (h) => {
      const params: string[] = [];
      const param = (value: string) => {
        params.push(value);
        return `$${params.length + 1}`;
      };
      let prefix = '';
      let pendingRow = '';
      if (exclude) {
        const keys =
          'pendingOf' in exclude
            ? `select coalesce(jsonb_agg(distinct c.pk), '[]'::jsonb) as keys from tenantry_private.move_changes c where c.move_id = ${param(exclude.pendingOf.moveId)}::uuid and c.relid = ${param(String(exclude.pendingOf.relid))}::oid`
            : `select ${param(exclude.keys)}::jsonb as keys`;
        prefix = `with x as materialized (${keys}),
          xk as materialized (select distinct ${keyList(t, 'p')} from x, jsonb_populate_recordset(null::${name}, x.keys) p)
`;
        if ('pendingOf' in exclude)
          pendingRow = `select -1 as i, 0 as n, (select keys::text from x) as h
 union all
`;
      }
      const parts = ranges.map((index) => {
        let where = '';
        if (index > 0) where += ` and ${keyBound(t, 't', '>=', param(cuts[index - 1]!), name)}`;
        if (index < cuts.length) where += ` and ${keyBound(t, 't', '<', param(cuts[index]!), name)}`;
        const all = `select count(*)::int as n, ${h} as h from ${name} t where ${tenant}${where}`;
        if (!exclude) return `select ${Math.trunc(index)} as i, n, h::text as h from (${all}) a`;
        const left = `select count(*)::int as n, ${h} as h from ${name} t join xk k on ${keyMatch(t, 't', 'k')} where ${tenant}${where}`;
        return `select ${Math.trunc(index)} as i, a.n - e.n as n, (coalesce(a.h, 0) - coalesce(e.h, 0))::text as h from (${all}) a, (${left}) e`;
      });
      return { sql: prefix + pendingRow + parts.join('\n union all\n'), params };
    });
    const pending = sums.find((x) => x.index === -1);
    return {
      sums: ranges.map((r) => sums.find((x) => x.index === r)!),
      textHash: text,
      pending: exclude ? ('keys' in exclude ? exclude.keys : (pending?.hash ?? '[]')) : undefined,
    };
  }

  /** Count and checksum (as {@link checksum}) of the rows with these primary keys (JSON array text). */
  async checksumKeys(
    db: pg.Pool,
    side: 'source' | 'target',
    keys: string,
    textHash = false,
  ): Promise<TableChecksum & { textHash: boolean }> {
    const t = this.table;
    const name = t[side];
    const { sums, textHash: text } = await this.#hashed(db, textHash, true, (h) => ({
      sql: `select 0 as i, count(*)::int as n, ${h}::text as h
              from ${name} t join (select distinct ${keyList(t, 'p')} from jsonb_populate_recordset(null::${name}, $2::jsonb) p) k on ${keyMatch(t, 't', 'k')}
             where t.${ident(t.tenantColumn)} = $1`,
      params: [keys],
    }));
    return { rows: sums[0]!.rows, hash: sums[0]!.hash, textHash: text };
  }

  async #hashed(
    db: pg.Pool,
    textHash: boolean,
    serial: boolean,
    build: (hash: string) => { sql: string; params: string[] },
  ): Promise<{ sums: Array<TableChecksum & { index: number }>; textHash: boolean }> {
    let text = textHash;
    const cols = [...this.table.columns]
      .sort()
      .map((c) => `t.${ident(c)}`)
      .join(', ');
    const hashed = `sum(hash_record_extended(row(${cols}), 0))`;
    const texted = `sum(hashtextextended(row(${cols})::text, 0))`;
    const client = await db.connect();
    try {
      // the text of a row must not depend on the server's or the session's settings
      await client.query('begin read only');
      await client.query(
        `set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'`,
      );
      // many small range scans: parallel workers would cost more to start than they save
      if (serial) await client.query('set local max_parallel_workers_per_gather = 0');
      const run = (h: string) => {
        const { sql, params } = build(h);
        return client.query<{ i: number; n: number; h: string | null }>(sql, [this.tenantId, ...params]);
      };
      await client.query('savepoint by_hash');
      // a column type without a binary hash: the row's text, on both sides (the caller retries the other side)
      const { rows } = await run(text ? texted : hashed).catch(async () => {
        text = true;
        await client.query('rollback to savepoint by_hash');
        return run(texted);
      });
      await client.query('commit');
      return { sums: rows.map((r) => ({ index: r.i, rows: r.n, hash: r.h ?? '0' })), textHash: text };
    } finally {
      client.release();
    }
  }

  /**
   * Cut points splitting the tenant's rows at the source into ranges of `size` rows in key order:
   * every `size`-th key, each as JSON text (numbers stay exact: never parsed here). Range `i` holds
   * the keys from cut `i - 1` (inclusive; the first range is open below) to cut `i` (exclusive;
   * the last range is open above, where new identity keys land).
   */
  async rangeCuts(source: Queryable, size: number): Promise<string[]> {
    const t = this.table;
    const { rows } = await source.query<{ cuts: string[] | null }>(
      `select array_agg(k::text order by rn) as cuts
         from (select ${keyObject(t, 't')} as k,
                      row_number() over (order by ${keyList(t, 't')}) as rn
                 from ${t.source} t where t.${ident(t.tenantColumn)} = $1) x
        where rn % $2 = 0`,
      [this.tenantId, size],
    );
    return rows[0]!.cuts ?? [];
  }

  /** The range (see {@link rangeCuts}) each of these primary keys (JSON array text) falls in, in their order. */
  async rangesOf(source: Queryable, cuts: string[], keys: string): Promise<number[]> {
    const t = this.table;
    const { rows } = await source.query<{ r: number }>(
      `with c as materialized (
         select ${keyList(t, 'c')} from jsonb_array_elements($1::jsonb) e(v) cross join lateral jsonb_populate_record(null::${t.source}, e.v) c)
       select (select count(*) from c where (${keyList(t, 'c')}) <= (${keyList(t, 'k')}))::int as r
         from jsonb_array_elements($2::jsonb) with ordinality e(v, i) cross join lateral jsonb_populate_record(null::${t.source}, e.v) k
        order by e.i`,
      [`[${cuts.join(',')}]`, keys],
    );
    return rows.map((r) => r.r);
  }

  /** The tenant's greatest key at the source above `after` (JSON text; any key when null), as JSON text, or null. */
  async lastKeyAfter(source: Queryable, after: string | null): Promise<string | null> {
    const t = this.table;
    const above = after ? `and ${keyBound(t, 't', '>', '$2', t.source)}` : 'and $2::jsonb is null';
    const { rows } = await source.query<{ k: string }>(
      `select ${keyObject(t, 't')}::text as k
         from ${t.source} t where t.${ident(t.tenantColumn)} = $1 ${above}
        order by ${t.key.map((k) => `t.${ident(k)} desc`).join(', ')} limit 1`,
      [this.tenantId, after],
    );
    return rows[0]?.k ?? null;
  }

  /** Moves the target's sequences past the largest value copied, so new rows do not collide. */
  async bumpSequences(target: Queryable): Promise<void> {
    for (const s of this.table.sequences) {
      await target.query(
        // the moved rows' greatest value (an index scan when the key is (tenant, column)); other
        // tenants' rows there came from this sequence, or were moved in and bumped it then
        `select setval($1::regclass, greatest((select max(t.${ident(s.column)}) from ${this.table.target} t where t.${ident(this.table.tenantColumn)} = $2)::bigint, (select last_value from ${s.sequence})), true)`,
        [s.sequence, this.tenantId],
      );
    }
  }
}
