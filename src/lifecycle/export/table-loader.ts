import { randomFillSync } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { sqlStateOf } from '../../errors/sqlstate.js';
import { ident } from '../../tiers/move/move-tables.js';
import { ArchiveError } from './archive-error.js';
import { archiveFailure } from './archive-reader.js';
import { IdBatch, type IdRemap } from './id-remap.js';
import type { ArchiveTable } from './manifest.js';
import { LineTransform, RowSetDigest, StreamDigest } from './row-digest.js';
import { copyOutSql, type TenantTable } from './tenant-tables.js';

const TAB_BYTE = 0x09;
/** Bytes per gunzip output chunk: 4× zlib's default, a quarter of the per-chunk work per row. */
const GUNZIP_CHUNK = 64 * 1024;

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
  /** The digest's seed, for the read-back. */
  seed: Uint32Array;
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
  // the digest's seed: random per table and import, shared with the read-back (verifyTable)
  const seed = randomFillSync(new Uint32Array(4));
  const sent = new RowSetDigest(seed);
  const raw = new StreamDigest(({ rows }) => onRows(rows));
  const from = Buffer.from(ids.from, 'latin1');
  const to = Buffer.from(ids.to, 'latin1');
  const sameTenant = from.equals(to);
  const remapped = new Uint8Array(names.length);
  for (const at of remapAt) remapped[at] = 1;
  const fields = names.length;
  const batch = ids.remap ? new IdBatch(ids.remap, 4096) : undefined;
  // byte offsets of the ids to remap in the chunk, and of each row's end: no string per row
  let idAt = new Int32Array(4096);
  let rowEnd = new Int32Array(1024);
  const mismatch = (message: string, column?: string) =>
    new ArchiveError('ARCHIVE_TABLE_MISMATCH', message, {
      details: column ? { table: archived.name, column } : { table: archived.name },
    });
  const rewrite = new LineTransform((lines) => {
    // every value written is a canonical uuid, as long as the one it replaces: the chunk's rows are
    // copied once and rewritten in place (untouched when there is nothing to rewrite)
    const out = sameTenant && !batch ? lines : Buffer.from(lines);
    let ids = 0;
    let rows = 0;
    let start = 0;
    while (start < out.length) {
      const end = out.indexOf(0x0a, start); // whole lines only: always found
      let field = 0;
      let fieldStart = start;
      for (;;) {
        let at = out.indexOf(TAB_BYTE, fieldStart);
        if (at === -1 || at > end) at = end;
        if (field === tenantAt) {
          // never load a row of another tenant, whatever the archive says
          if (at - fieldStart !== from.length || out.compare(from, 0, from.length, fieldStart, at) !== 0)
            throw mismatch(`A row of ${archived.name} belongs to another tenant`);
          if (!sameTenant) to.copy(out, fieldStart);
        } else if (batch && field < fields && remapped[field]) {
          const nul = at - fieldStart === 2 && out[fieldStart] === 0x5c && out[fieldStart + 1] === 0x4e; // \N
          if (!nul) {
            if (at - fieldStart !== 36 || !batch.add(out, fieldStart, ids))
              throw mismatch(`A remapped id of ${archived.name} is not a uuid`, names[field]);
            if (ids === idAt.length) idAt = grow(idAt);
            idAt[ids++] = fieldStart;
          }
        }
        field++;
        if (at === end) break;
        fieldStart = at + 1;
      }
      if (field !== fields) throw mismatch(`A row of ${archived.name} has the wrong number of columns`);
      if (rows === rowEnd.length) rowEnd = grow(rowEnd);
      rowEnd[rows++] = end + 1;
      start = end + 1;
    }
    if (batch && ids) {
      batch.run();
      for (let i = 0; i < ids; i++) batch.write(out, idAt[i]!, i);
      batch.reset();
    }
    for (let r = 0, s = 0; r < rows; s = rowEnd[r++]!) sent.add(out, s, rowEnd[r]!);
    return out;
  });
  const sql = `copy ${target.qualified} (${names.map(ident).join(', ')}) from stdin`;
  try {
    await pipeline(entry, createGunzip({ chunkSize: GUNZIP_CHUNK }), raw, rewrite, client.query(copyFrom(sql)));
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
  return { table: load, sent: sent.value(), seed };
}

/** Reads back what a table holds for the tenant and compares it with what was sent; IMPORT_VERIFICATION_FAILED. */
export async function verifyTable(loaded: LoadedTable, tenantId: string): Promise<void> {
  const { archived, target, client } = loaded.table;
  const held = new RowSetDigest(loaded.seed);
  const names = archived.columns.map((c) => c.name);
  await pipeline(
    client.query(copyTo(copyOutSql(target, names, tenantId, false))),
    new LineTransform((lines) => {
      for (let start = 0, end = lines.indexOf(0x0a); end !== -1; start = end + 1, end = lines.indexOf(0x0a, start))
        held.add(lines, start, end + 1);
      return undefined;
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

const grow = (a: Int32Array<ArrayBuffer>): Int32Array<ArrayBuffer> => {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
};

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
