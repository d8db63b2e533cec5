import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { ident } from '../../tiers/move/move-tables.js';
import { ArchiveError } from './archive-error.js';
import { archiveFailure } from './archive-reader.js';
import type { IdRemap } from './id-remap.js';
import type { ArchiveTable } from './manifest.js';
import { LineTransform, RowSetDigest, StreamDigest } from './row-digest.js';
import { copyOutSql, type TenantTable } from './tenant-tables.js';

const TAB_BYTE = 0x09;

/** A table to load: the archive's description and the table found at the target. */
export interface LoadTable {
  archived: ArchiveTable;
  target: TenantTable;
  client: pg.ClientBase;
}

/** What was sent to COPY: the rows' order-independent digest, compared with what the table holds afterwards. */
export interface LoadedTable {
  table: LoadTable;
  sent: string;
}

/**
 * Streams one table's entry into its target table: gunzip, the archive's bytes hashed and counted
 * (checked against the manifest at the end), each row checked to be the archived tenant's and
 * rewritten (the target tenant id; fresh ids in the remapped columns), then COPY FROM STDIN.
 * Backpressure all the way: memory holds a chunk or two, whatever the table's size.
 */
export async function loadTable(
  entry: Readable,
  load: LoadTable,
  ids: { from: string; to: string; remap: IdRemap | undefined },
  onRows: (rows: number) => void,
): Promise<LoadedTable> {
  const { archived, target, client } = load;
  const names = archived.columns.map((c) => c.name);
  const tenantAt = names.indexOf(archived.tenantColumn);
  const remapAt = ids.remap ? archived.remap.map((c) => names.indexOf(c)) : [];
  const sent = new RowSetDigest();
  const raw = new StreamDigest(({ rows }) => onRows(rows));
  const from = Buffer.from(ids.from, 'latin1');
  const to = Buffer.from(ids.to, 'latin1');
  const sameTenant = from.equals(to);
  const wanted = [tenantAt, ...remapAt].sort((a, b) => a - b);
  const last = names.length - 1;
  // byte ranges of the fields to check or rewrite: found by scanning for tabs, no string per row
  const starts = new Array<number>(names.length);
  const ends = new Array<number>(names.length);
  const rewrite = new LineTransform((line) => {
    let field = 0;
    let start = 0;
    const end = line.length - 1; // the newline
    for (let at = line.indexOf(TAB_BYTE); ; at = line.indexOf(TAB_BYTE, start)) {
      if (at === -1 || at > end) at = end;
      if (field <= last) {
        starts[field] = start;
        ends[field] = at;
      }
      field++;
      if (at === end) break;
      start = at + 1;
    }
    if (field !== names.length)
      throw new ArchiveError('ARCHIVE_TABLE_MISMATCH', `A row of ${archived.name} has the wrong number of columns`, {
        details: { table: archived.name },
      });
    // never load a row of another tenant, whatever the archive says
    if (
      ends[tenantAt]! - starts[tenantAt]! !== from.length ||
      line.compare(from, 0, from.length, starts[tenantAt], ends[tenantAt]) !== 0
    )
      throw new ArchiveError('ARCHIVE_TABLE_MISMATCH', `A row of ${archived.name} belongs to another tenant`, {
        details: { table: archived.name },
      });
    let out = line;
    if (!sameTenant || remapAt.length) {
      // every value written is a canonical uuid, as long as the one it replaces: one copy of the row
      out = Buffer.from(line);
      for (const at of wanted) {
        if (at === tenantAt) {
          to.copy(out, starts[at]);
          continue;
        }
        const v = line.toString('latin1', starts[at], ends[at]);
        if (v === '\\N') continue;
        const mapped = v.length === 36 ? ids.remap!.map(v) : undefined;
        if (mapped === undefined)
          throw new ArchiveError('ARCHIVE_TABLE_MISMATCH', `A remapped id of ${archived.name} is not a uuid`, {
            details: { table: archived.name, column: names[at] },
          });
        out.write(mapped, starts[at]!, 'latin1');
      }
    }
    sent.add(out);
    return out;
  });
  const sql = `copy ${target.qualified} (${names.map(ident).join(', ')}) from stdin`;
  try {
    await pipeline(entry, createGunzip(), raw, rewrite, client.query(copyFrom(sql)));
  } catch (error) {
    throw loadFailure(error, archived.name);
  }
  const facts = raw.facts();
  if (facts.rows !== archived.rows || facts.bytes !== archived.bytes || facts.sha256 !== archived.sha256)
    throw new ArchiveError(
      'ARCHIVE_TABLE_MISMATCH',
      `Table ${archived.name} does not match the manifest (rows, size or SHA-256): the archive was altered or damaged`,
      { details: { table: archived.name, rows: facts.rows, expectedRows: archived.rows } },
    );
  return { table: load, sent: sent.value() };
}

/** Reads back what a table holds for the tenant and compares it with what was sent; IMPORT_VERIFICATION_FAILED. */
export async function verifyTable(loaded: LoadedTable, tenantId: string): Promise<void> {
  const { archived, target, client } = loaded.table;
  const held = new RowSetDigest();
  const names = archived.columns.map((c) => c.name);
  await pipeline(
    client.query(copyTo(copyOutSql(target, names, tenantId, false))),
    new LineTransform((line) => {
      held.add(line);
      return line;
    }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const _ of source) yield* [];
    },
  );
  if (held.value() !== loaded.sent)
    throw new ArchiveError(
      'IMPORT_VERIFICATION_FAILED',
      `Table ${archived.name} does not hold the rows that were loaded (${held.rows} of ${archived.rows})`,
      { details: { table: archived.name, rows: held.rows, expectedRows: archived.rows } },
    );
}

function loadFailure(error: unknown, table: string): unknown {
  const state = sqlStateOf(error);
  if (state === '23505')
    return new ArchiveError('IMPORT_CONFLICT', `A row of ${table} has a key that exists at the target`, {
      details: { table },
      cause: error,
    });
  if (state === '23503')
    return new ArchiveError(
      'IMPORT_REFERENCE_MISSING',
      `A row of ${table} references a row the target does not have (a table outside the archive, e.g. users)`,
      { details: { table }, cause: error },
    );
  if (state && /^(22|23|42)/.test(state))
    return new ArchiveError('IMPORT_SCHEMA_MISMATCH', `The rows of ${table} do not fit the target table (${state})`, {
      details: { table, sqlstate: state },
      cause: error,
    });
  if (error instanceof Error && /row does not end with a newline/.test(error.message))
    return new ArchiveError('ARCHIVE_TRUNCATED', `The archive is truncated inside ${table}`, { details: { table } });
  return archiveFailure(error);
}
