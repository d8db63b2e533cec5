// Zero extra round trips: the tenant context travels in the same flight as the statement.
// The client's socket is instrumented: every write and every read is logged in order, so a
// "flight" is a run of writes the client sends before it next hears from the server. A
// statement that needs one answer before the next message (set_config, then the query) shows
// as two flights. ReadyForQuery messages and the frontend messages written are counted too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { createNotesTable } from '../support/notes-table.js';

let db: TestDatabase;
let pool: TenantPool;
const A = randomUUID();

interface Measure {
  /** Runs of client writes separated by server replies: the number of round trips. */
  flights: number;
  /** ReadyForQuery messages received. */
  readyForQuery: number;
  /** Frontend message types written, e.g. ['P','B','E','P','B','D','E','S']. */
  messages: string[];
  /** Texts of the Parse messages written. */
  parsed: string[];
  /** Statement names of the Bind messages written ('' for the unnamed statement). */
  bound: string[];
}

/** Wraps a connected client's socket and counts what crosses it while `fn` runs. */
function instrument(client: pg.Client | pg.PoolClient) {
  const connection = (
    client as unknown as { connection: NodeJS.EventEmitter & { stream: NodeJS.WritableStream & NodeJS.EventEmitter } }
  ).connection;
  const stream = connection.stream;
  let log: ('W' | 'R')[] = [];
  let written: Buffer[] = [];
  let readyForQuery = 0;
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  (stream as unknown as { write: (...args: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
    log.push('W');
    written.push(Buffer.from(chunk as Buffer));
    return write(chunk, ...rest);
  };
  // before pg's own listener, which may write the next messages synchronously
  stream.prependListener('data', () => log.push('R'));
  connection.on('readyForQuery', () => readyForQuery++);

  return async function measure(fn: () => Promise<unknown>): Promise<Measure> {
    log = [];
    written = [];
    readyForQuery = 0;
    await fn();
    const flights = log.filter((e, i) => e === 'W' && (i === 0 || log[i - 1] === 'R')).length;
    return { flights, readyForQuery, ...decode(Buffer.concat(written)) };
  };
}

/** Splits the frontend byte stream into messages (type byte + int32 length). */
function decode(bytes: Buffer): { messages: string[]; parsed: string[]; bound: string[] } {
  const messages: string[] = [];
  const parsed: string[] = [];
  const bound: string[] = [];
  let at = 0;
  while (at + 5 <= bytes.length) {
    const type = String.fromCharCode(bytes[at]!);
    const length = bytes.readInt32BE(at + 1);
    if (type === 'P') {
      const body = bytes.subarray(at + 5, at + 1 + length);
      const nameEnd = body.indexOf(0);
      parsed.push(body.subarray(nameEnd + 1, body.indexOf(0, nameEnd + 1)).toString('utf8'));
    }
    if (type === 'B') {
      const body = bytes.subarray(at + 5, at + 1 + length);
      const portalEnd = body.indexOf(0);
      bound.push(body.subarray(portalEnd + 1, body.indexOf(0, portalEnd + 1)).toString('utf8'));
    }
    messages.push(type);
    at += 1 + length;
  }
  expect(at, 'the written bytes are whole protocol messages').toBe(bytes.length);
  return { messages, parsed, bound };
}

/** Statements end with a Sync (extended) or are a simple Query: one per round trip. */
const terminators = (m: Measure) => m.messages.filter((t) => t === 'S' || t === 'Q').length;
const carriesContext = (m: Measure) => m.parsed.some((text) => text.includes('tenantry.context'));

beforeAll(async () => {
  db = await createTestDatabase();
  await createNotesTable(db, [
    [A, 'a1'],
    [A, 'a2'],
  ]);
  // the unnamed forms, whose Parse messages show what each flight carries (the named defaults:
  // 'round trips with the defaults' below)
  pool = db.appPool({ max: 1, prepareContextStatement: false, prepareStatements: false });
});
afterAll(() => db?.drop());

describe('round trips', () => {
  let plain: pg.Client;
  let measurePlain: ReturnType<typeof instrument>;
  let held: pg.PoolClient;
  let measureTenant: ReturnType<typeof instrument>;

  beforeAll(async () => {
    // the baseline: plain node-postgres as the same role, no tenant context at all
    plain = new pg.Client({ connectionString: db.appUrl });
    await plain.connect();
    measurePlain = instrument(plain);
    held = await pool.connect();
    measureTenant = instrument(held);
  });
  afterAll(async () => {
    held?.release();
    await plain?.end();
  });

  it('the instrument sees an extra round trip when there is one (control)', async () => {
    const m = await measurePlain(async () => {
      await plain.query(`select set_config('tenantry.context', $1, true)`, ['']);
      await plain.query('select 1');
    });
    expect(m.flights).toBe(2);
    expect(m.readyForQuery).toBe(2);
  });

  it.each([
    ['parameterless', 'select body from notes', undefined],
    ['parameterised', 'select body from notes where body <> $1', ['']],
  ] as const)(
    'an autocommit statement (%s) costs one round trip and one ReadyForQuery, like plain pg',
    async (_name, text, values) => {
      const baseline = await measurePlain(() => plain.query(text, values as unknown[] | undefined));
      const tenant = await measureTenant(() => runAs(A, () => held.query(text, values as unknown[] | undefined)));
      expect(baseline).toMatchObject({ flights: 1, readyForQuery: 1 });
      expect(tenant).toMatchObject({ flights: 1, readyForQuery: 1 });
      expect(terminators(tenant)).toBe(1);
      expect(carriesContext(tenant), 'the context went out in that flight').toBe(true);
      expect(carriesContext(baseline)).toBe(false);
      // with or without parameters, the statement goes out with the extended protocol, behind the
      // prefix and before the one Sync (plain pg sends a parameterless one as a simple Query)
      expect(tenant.messages.at(-1)).toBe('S');
      expect(tenant.messages).not.toContain('Q');
      expect(tenant.parsed).toEqual([expect.stringContaining('tenantry.context'), text]);
      expect(baseline.messages).toEqual(values ? ['P', 'B', 'D', 'E', 'S'] : ['Q']);
    },
  );

  it('a multi-statement string outside a transaction is refused before anything is written, with or without a tenant', async () => {
    for (const run of [(f: () => unknown) => runAs(A, f), (f: () => unknown) => runWithoutTenant(f)]) {
      const m = await measureTenant(async () => {
        const error = await (run(() => held.query('select 1; select body from notes')) as Promise<unknown>).catch(
          (e: unknown) => e,
        );
        expect((error as { code?: string }).code).toBe('UNSUPPORTED');
      });
      expect(m).toEqual({ flights: 0, readyForQuery: 0, messages: [], parsed: [], bound: [] });
    }
    // control: a measured statement that is sent shows up
    const sent = await measureTenant(() => runWithoutTenant(() => held.query('select body from notes')));
    expect(sent.flights).toBe(1);
  });

  it('a multi-statement string inside a transaction is one simple Query, without a prefix: the transaction carries the tenant', async () => {
    // a client of its own: the text quarantines its session (tenant-client.ts), which then serves no other tenant
    const ownPool = db.appPool({ max: 1, prepareContextStatement: false });
    const own = await ownPool.connect();
    const measure = instrument(own);
    await runAs(A, () => own.query('begin'));
    try {
      const m = await measure(() =>
        runAs(A, () => own.query('select body from notes; select tenantry.current_tenant_id()')),
      );
      expect(m).toEqual({ flights: 1, readyForQuery: 1, messages: ['Q'], parsed: [], bound: [] });
    } finally {
      await runAs(A, () => own.query('rollback'));
      own.release();
      await ownPool.end();
    }
  });

  it('a statement with no tenant costs one round trip too (it still sends the empty context)', async () => {
    const m = await measureTenant(() =>
      runWithoutTenant(() => held.query('select body from notes where body <> $1', [''])),
    );
    expect(m).toMatchObject({ flights: 1, readyForQuery: 1 });
    expect(carriesContext(m)).toBe(true);
  });

  it('BEGIN / statement / COMMIT costs three round trips, the same as plain pg', async () => {
    const run = (client: pg.Client | pg.PoolClient) => async () => {
      await client.query('begin');
      await client.query('select body from notes where body <> $1', ['']);
      await client.query('commit');
    };
    const baseline = await measurePlain(run(plain));
    const tenant = await measureTenant(() => runAs(A, run(held)));
    expect(baseline).toMatchObject({ flights: 3, readyForQuery: 3 });
    expect(tenant).toMatchObject({ flights: baseline.flights, readyForQuery: baseline.readyForQuery });
    expect(tenant.parsed.filter((t) => t.includes('tenantry.context')).length).toBe(3);
  });

  it('an error and ROLLBACK cost the same round trips as plain pg', async () => {
    const run = (client: pg.Client | pg.PoolClient) => async () => {
      await client.query('begin');
      await client.query('select 1/0').catch(() => undefined);
      await client.query('rollback');
    };
    const baseline = await measurePlain(run(plain));
    const tenant = await measureTenant(() => runAs(A, run(held)));
    expect(tenant).toMatchObject({ flights: baseline.flights, readyForQuery: baseline.readyForQuery });
    expect(baseline.flights).toBe(3);
  });

  it('the rows a tenant gets are the statement’s own, not the prefix’s', async () => {
    const r = await runAs(A, () => held.query('select body from notes where body <> $1 order by body', ['']));
    expect(r.rows).toEqual([{ body: 'a1' }, { body: 'a2' }]);
    expect(r.fields.map((f) => f.name)).toEqual(['body']);
    expect(r.command).toBe('SELECT');
  });
});

describe('where the app connections go', () => {
  it('through pgbouncer when TENANTRY_TEST_APP_PORT is set, straight to PostgreSQL otherwise', async () => {
    const behindPgbouncer = Boolean(process.env.TENANTRY_TEST_APP_PORT);
    const client = await pool.connect();
    try {
      const localPort = (client as unknown as { connection: { stream: { localPort: number } } }).connection.stream
        .localPort;
      const { rows } = await client.query(
        'select inet_server_port() as server_port, inet_client_port() as client_port where $1',
        [true],
      );
      // a pooler makes its own connection to PostgreSQL: the server sees another client port
      expect(rows[0].client_port !== localPort).toBe(behindPgbouncer);
      expect(String(rows[0].server_port) === new URL(db.appUrl).port).toBe(!behindPgbouncer);
    } finally {
      client.release();
    }
  });
});

describe('round trips through pool.query', () => {
  it('pool.query costs one round trip on an idle pooled connection', async () => {
    const single = db.appPool({ max: 1, prepareContextStatement: false, prepareStatements: false });
    await single.query('select 1 where $1', [true]); // open the connection
    const client = await single.connect();
    const measure = instrument(client);
    client.release();
    const m = await measure(() => runAs(A, () => single.query('select body from notes where body <> $1', [''])));
    expect(m).toMatchObject({ flights: 1, readyForQuery: 1 });
    expect(carriesContext(m)).toBe(true);
  });
});

describe('round trips with the defaults (named prefix and statements on a direct connection)', () => {
  // behind pgbouncer in transaction pooling (CI's pgbouncer stage) the defaults stay unnamed
  const behindPgbouncer = Boolean(process.env.TENANTRY_TEST_APP_PORT);
  const form = behindPgbouncer ? 'unnamed' : 'named';
  it(`a statement costs one round trip: the ${form} prefix and statement under one Sync`, async () => {
    const named = db.appPool({ max: 1 });
    expect(await named.poolerInfo()).toMatchObject({ prefix: form, statements: form });
    const text = 'select body from notes where body <> $1';
    // the first run parses both names (and a value is registered only at its 16th use: remembered
    // proofs, a statement of its own on this one connection, not counted here)
    await runAs(A, () => named.query(text, ['']));
    const client = await named.connect();
    const measure = instrument(client);
    client.release();
    const m = await measure(() => runAs(A, () => named.query(text, [''])));
    expect(m).toMatchObject({ flights: 1, readyForQuery: 1 });
    expect(terminators(m)).toBe(1);
    if (behindPgbouncer) {
      expect(m.parsed).toEqual([expect.stringContaining('tenantry.context'), text]);
      expect(m.bound).toEqual(['', '']);
    } else {
      // parsed once per connection, at the first run: now only bound
      expect(m.parsed).toEqual([]);
      expect(m.bound).toEqual(['tenantry_context', expect.stringMatching(/^tenantry_s\d+$/)]);
    }
    expect(m.messages.at(-1)).toBe('S');
    const rows = await runAs(A, () => named.query<{ body: string }>(text, ['']));
    expect(rows.rows.map((r) => r.body).sort()).toEqual(['a1', 'a2']);
    await named.end();
  });
});
