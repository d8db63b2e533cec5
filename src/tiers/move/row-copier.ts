import type pg from 'pg';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { ident, type MoveTable } from './move-tables.js';

/** A table's checksum over one tenant's rows: count and a sum of 64-bit row hashes. */
export interface TableChecksum {
  rows: number;
  hash: string;
}

/** One key range of a table's rows: range `index` of those the cut points make (see `RowCopier.rangeCuts`). */
export interface KeyRange {
  cuts: string[];
  index: number;
}

const keyList = (t: MoveTable, alias: string): string => t.key.map((k) => `${alias}.${ident(k)}`).join(', ');
const keyMatch = (t: MoveTable, a: string, b: string): string => t.key.map((k) => `${a}.${ident(k)} = ${b}.${ident(k)}`).join(' and ');

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
  async readBatch(source: Queryable, after: Record<string, unknown> | null, limit: number): Promise<{ count: number; rows: string; last: Record<string, unknown> | null }> {
    const t = this.table;
    const cursor = after ? `and (${keyList(t, 't')}) > (select ${keyList(t, 'c')} from jsonb_populate_record(null::${t.source}, $2::jsonb) c)` : 'and $2::jsonb is null';
    const { rows } = await source.query<{ count: number; rows: string; last: Record<string, unknown> | null }>(
      `with b as materialized (
         select t.* from ${t.source} t where t.${ident(t.tenantColumn)} = $1 ${cursor} order by ${keyList(t, 't')} limit $3)
       select count(*)::int as count, coalesce(jsonb_agg(to_jsonb(b)), '[]')::text as rows,
              (select jsonb_build_object(${t.key.map((k) => `'${k.replaceAll("'", "''")}', l.${ident(k)}`).join(', ')})
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
    const onConflict = rest.length === 0
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
    const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from ${this.table[side]} where ${ident(this.table.tenantColumn)} = $1`, [this.tenantId]);
    return rows[0]!.n;
  }

  /**
   * Count and checksum of the tenant's rows: the sum of a 64-bit hash of each row's copied
   * columns (sorted by name) as text, so it does not depend on scan order or column order.
   */
  async checksum(db: pg.Pool, side: 'source' | 'target', textHash = false, range?: KeyRange): Promise<TableChecksum & { textHash: boolean }> {
    let text = textHash;
    const t = this.table;
    const { where, params } = this.#rangeWhere(side, range);
    const cols = [...t.columns].sort().map((c) => `t.${ident(c)}`).join(', ');
    const client = await db.connect();
    try {
      // the text of a row must not depend on the server's or the session's settings
      await client.query('begin read only');
      await client.query(`set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'; set local intervalstyle = 'postgres'; set local extra_float_digits = 1; set local bytea_output = 'hex'`);
      // per-type binary hashes when every column type has one (fast, no text output), else the row's text
      const hashed = `sum(hash_record_extended(row(${cols}), 0))::text`;
      const texted = `sum(hashtextextended(row(${cols})::text, 0))::text`;
      const sql = (h: string) => `select count(*)::int as n, ${h} as h from ${t[side]} t where t.${ident(t.tenantColumn)} = $1${where}`;
      await client.query('savepoint by_hash');
      const { rows } = await client
        .query<{ n: number; h: string | null }>(sql(text ? texted : hashed), [this.tenantId, ...params])
        .catch(async () => {
          text = true;
          await client.query('rollback to savepoint by_hash');
          return client.query<{ n: number; h: string | null }>(sql(texted), [this.tenantId, ...params]);
        });
      await client.query('commit');
      return { rows: rows[0]!.n, hash: rows[0]!.h ?? '0', textHash: text };
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
         from (select jsonb_build_object(${t.key.map((k) => `'${k.replaceAll("'", "''")}', t.${ident(k)}`).join(', ')}) as k,
                      row_number() over (order by ${keyList(t, 't')}) as rn
                 from ${t.source} t where t.${ident(t.tenantColumn)} = $1) x
        where rn % $2 = 0`,
      [this.tenantId, size],
    );
    return rows[0]!.cuts ?? [];
  }

  /** The ranges (see {@link rangeCuts}) that these primary keys (JSON array text) fall in. */
  async rangesOf(source: Queryable, cuts: string[], keys: string): Promise<number[]> {
    const t = this.table;
    const { rows } = await source.query<{ r: number }>(
      `with c as materialized (
         select ${keyList(t, 'c')} from jsonb_array_elements($1::jsonb) e(v) cross join lateral jsonb_populate_record(null::${t.source}, e.v) c)
       select distinct (select count(*) from c where (${keyList(t, 'c')}) <= (${keyList(t, 'k')}))::int as r
         from jsonb_populate_recordset(null::${t.source}, $2::jsonb) k`,
      [`[${cuts.join(',')}]`, keys],
    );
    return rows.map((r) => r.r);
  }

  #rangeWhere(side: 'source' | 'target', range: KeyRange | undefined): { where: string; params: string[] } {
    if (!range) return { where: '', params: [] };
    const t = this.table;
    const name = t[side];
    let where = '';
    const params: string[] = [];
    const lo = range.index > 0 ? range.cuts[range.index - 1] : undefined;
    const hi = range.cuts[range.index];
    if (lo !== undefined) {
      params.push(lo);
      where += ` and (${keyList(t, 't')}) >= (select ${keyList(t, 'c')} from jsonb_populate_record(null::${name}, $${params.length + 1}::jsonb) c)`;
    }
    if (hi !== undefined) {
      params.push(hi);
      where += ` and (${keyList(t, 't')}) < (select ${keyList(t, 'c')} from jsonb_populate_record(null::${name}, $${params.length + 1}::jsonb) c)`;
    }
    return { where, params };
  }

  /** Moves the target's sequences past the largest value copied, so new rows do not collide. */
  async bumpSequences(target: Queryable): Promise<void> {
    for (const s of this.table.sequences) {
      await target.query(
        `select setval($1::regclass, greatest((select max(${ident(s.column)}) from ${this.table.target})::bigint, (select last_value from ${s.sequence})), true)`,
        [s.sequence],
      );
    }
  }
}
