// The statement's own messages written by hand after the prefix (prefix-bytes.ts withStatement,
// sent by ContextQuery in one buffer): byte for byte what pg's serializer writes, then end to
// end against PostgreSQL for every kind of parameter pg maps (numbers, bigints, booleans, Dates,
// Buffers, JSON, arrays, nulls), row modes, type parsers, a failing mapping, named and unnamed
// forms, in one socket write per statement.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { serialize } from 'pg-protocol';
import { runAs } from '../src/context/tenant-context.js';
import { namedPrefix, prefixMessages, unnamedPrefix, parseMessage, withStatement } from '../src/data/prefix-bytes.js';
import type { TenantPool } from '../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';
import { createNotesTable } from './support/notes-table.js';

/** What pg's Query.prepare writes for a statement (Parse when `parse`, Bind, Describe, Execute, Sync). */
function pgWrites(parse: boolean, name: string, text: string, values: readonly (string | Buffer | null)[]): Buffer {
  return Buffer.concat([
    ...(parse ? [serialize.parse({ name, text, types: [] })] : []),
    serialize.bind({ portal: '', statement: name, values: values as unknown[] }),
    serialize.describe({ type: 'P', name: '' }),
    serialize.execute({ portal: '', rows: undefined }),
    serialize.sync(),
  ]);
}

describe('withStatement, byte for byte', () => {
  const prefix = unnamedPrefix(parseMessage('', 'select 1'), 'ctx');
  const cases: Array<[string, boolean, string, string, Array<string | Buffer | null>]> = [
    ['unnamed, parsed', true, '', 'select $1::int', ['1']],
    ['named, parsed', true, 'tenantry_s1', 'select $1, $2', ['a', 'b']],
    ['named, already parsed', false, 'tenantry_s1', 'select $1, $2', ['a', 'b']],
    ['no parameters', true, '', 'select 1', []],
    ['nulls and empty strings', true, 'n', 'select $1, $2, $3', [null, '', null]],
    ['multi-byte text, name and values', true, 'é_名', "select 'ß' || $1", ['名前 🙂']],
    ['a Buffer: binary format', true, '', 'select $1::bytea, $2', [Buffer.from([0, 1, 2, 255]), 'x']],
    ['a long value', false, 'big', 'select $1', ['x'.repeat(100_000)]],
  ];
  it.each(cases)('%s', (_, parse, name, text, values) => {
    const ours = withStatement(prefix, parse, name, text, values);
    expect(ours.subarray(0, prefix.length)).toEqual(prefix);
    expect(ours.subarray(prefix.length)).toEqual(pgWrites(parse, name, text, values));
  });

  it('an empty prefix leaves the statement alone', () => {
    expect(withStatement(Buffer.alloc(0), true, 's', 'select $1', ['v'])).toEqual(
      pgWrites(true, 's', 'select $1', ['v']),
    );
  });

  it('namedPrefix: the Bind and Execute of the named prefix, as pg writes them, shared by value', () => {
    const bytes = namedPrefix('tenantry_context', 'value-1');
    expect(bytes).toEqual(
      Buffer.concat([serialize.bind({ statement: 'tenantry_context', values: ['value-1'] }), serialize.execute({})]),
    );
    expect(bytes).toEqual(prefixMessages(undefined, 'tenantry_context', ['value-1']));
    expect(namedPrefix('tenantry_context', 'value-1')).toBe(bytes);
    expect(namedPrefix('tenantry_context', 'value-2')).not.toEqual(bytes);
  });
});

let db: TestDatabase;
const A = randomUUID();
const B = randomUUID();

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [B, 'b1'],
  ]);
});
afterAll(() => db?.drop());

/** Counts the socket writes of a pool's single connection. */
async function countWrites(pool: TenantPool): Promise<{ writes: () => number }> {
  const client = await pool.connect();
  const stream = (client as unknown as { connection: { stream: { write: (...args: unknown[]) => boolean } } })
    .connection.stream;
  let n = 0;
  const write = stream.write.bind(stream);
  stream.write = (...args: unknown[]) => {
    n++;
    return write(...args);
  };
  client.release();
  return { writes: () => n };
}

const forms: Array<[string, Parameters<TestDatabase['appPool']>[0]]> = [
  ['unnamed', { prepareStatements: false, prepareContextStatement: false }],
  ['named statements and prefix', { prepareStatements: true, prepareContextStatement: 'auto' }],
];

describe.each(forms)('statements written by hand (%s)', (_, options) => {
  let pool: TenantPool;
  beforeAll(async () => {
    // remembered proofs off: a registration is a statement of its own on this one connection, not the statement's bytes
    pool = db.appPool({ ...options, max: 1, rememberProofs: false });
    await pool.poolerInfo();
  });
  afterAll(() => pool.end());

  it('maps every kind of parameter as pg does', async () => {
    const date = new Date('2026-12-07T06:00:00.123Z');
    const values = [
      42,
      12345678901234567890n,
      true,
      date,
      Buffer.from([0, 1, 2, 255]),
      { a: [1, 'two'], b: null },
      [1, 2, null],
      null,
      undefined,
      'naïve 名前 🙂',
      { toPostgres: () => 'from toPostgres' },
      new Uint8Array([7, 8]),
    ];
    const text =
      'select $1::int as n, $2::numeric::text as big, $3::bool as b, $4::timestamptz as d, $5::bytea as buf,' +
      ' $6::jsonb as j, $7::int[] as arr, $8::text as nul, $9::text as und, $10::text as s, $11::text as tp,' +
      ' $12::bytea as u8';
    for (let run = 0; run < 3; run++) {
      const { rows } = await runAs(A, () => pool.query(text, values));
      expect(rows).toEqual([
        {
          n: 42,
          big: '12345678901234567890',
          b: true,
          d: date,
          buf: Buffer.from([0, 1, 2, 255]),
          j: { a: [1, 'two'], b: null },
          arr: [1, 2, null],
          nul: null,
          und: null,
          s: 'naïve 名前 🙂',
          tp: 'from toPostgres',
          u8: Buffer.from([7, 8]),
        },
      ]);
    }
  });

  it('one socket write per statement, tenants kept apart', async () => {
    const { writes } = await countWrites(pool);
    const before = writes();
    for (let i = 0; i < 5; i++) {
      expect((await runAs(A, () => pool.query('select body from notes where body like $1', ['%']))).rows).toEqual([
        { body: 'a1' },
      ]);
      expect((await runAs(B, () => pool.query('select body from notes where body like $1', ['%']))).rows).toEqual([
        { body: 'b1' },
      ]);
      expect((await pool.query('select body from notes where body like $1', ['%'])).rowCount).toBe(0);
    }
    expect(writes() - before).toBe(15);
  });

  it('row mode, type parsers, names of the app and statements without parameters', async () => {
    const arrays = await runAs(A, () =>
      pool.query({ text: 'select body, $1::int as n from notes', values: [1], rowMode: 'array' }),
    );
    expect(arrays.rows).toEqual([['a1', 1]]);
    const types = { getTypeParser: () => (v: string) => `parsed ${v}` };
    const parsed = await runAs(A, () => pool.query({ text: 'select $1::int as n', values: [5], types }));
    expect(parsed.rows).toEqual([{ n: 'parsed 5' }]);
    for (let i = 0; i < 2; i++) {
      const named = await runAs(A, () =>
        pool.query({ name: 'app_named', text: 'select body from notes where $1', values: [true] }),
      );
      expect(named.rows).toEqual([{ body: 'a1' }]);
    }
    expect((await runAs(B, () => pool.query('select body from notes'))).rows).toEqual([{ body: 'b1' }]);
  });

  it('a value pg cannot map fails its statement, nothing sent, and the connection goes on', async () => {
    const { writes } = await countWrites(pool);
    const before = writes();
    const bad = {
      toPostgres: () => {
        throw new Error('no mapping');
      },
    };
    await expect(runAs(A, () => pool.query('select $1::text', [bad]))).rejects.toThrow('no mapping');
    expect(writes()).toBe(before);
    expect((await runAs(A, () => pool.query('select body from notes where $1', [true]))).rows).toEqual([
      { body: 'a1' },
    ]);
  });

  it('inside a transaction, and a failed statement in it', async () => {
    const client = await pool.connect();
    try {
      await runAs(A, async () => {
        await client.query('begin');
        await client.query('insert into notes (body) values ($1)', ['a-tx']);
        expect((await client.query('select count(*)::int as n from notes where body = $1', ['a-tx'])).rows).toEqual([
          { n: 1 },
        ]);
        await expect(client.query('select $1::int / 0', [1])).rejects.toMatchObject({ code: '22012' });
        await client.query('rollback');
        expect((await client.query('select count(*)::int as n from notes where body = $1', ['a-tx'])).rows).toEqual([
          { n: 0 },
        ]);
      });
    } finally {
      client.release();
    }
  });
});

describe("statements pg's own path still sends", () => {
  it('binary results (a client with binary: true): several writes, right rows', async () => {
    const pool = db.appPool({ max: 1, binary: true } as Parameters<TestDatabase['appPool']>[0]);
    try {
      const { writes } = await countWrites(pool);
      const before = writes();
      const { rows } = await runAs(A, () => pool.query('select $1::int as n, body from notes', [7]));
      expect(rows).toEqual([{ n: 7, body: 'a1' }]);
      expect(writes() - before).toBeGreaterThan(1);
    } finally {
      await pool.end();
    }
  });
});
