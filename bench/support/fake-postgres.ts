import { Duplex } from 'node:stream';

const cstring = (s: string) => Buffer.from(`${s}\0`, 'utf8');

function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

function field(name: string, typeOid: number, typeLen: number): Buffer {
  return Buffer.concat([cstring(name), int32(0), int16(0), int32(typeOid), int16(typeLen), int32(-1), int16(0)]);
}

// Canned answers, built once: the fake server's own cost stays small and equal for every variant.
const PARSE_COMPLETE = message('1');
const BIND_COMPLETE = message('2');
const CLOSE_COMPLETE = message('3');
const ROW_ITEM = message('T', int16(2), field('id', 20, 8), field('payload', 25, -1));
const ROW_SET_CONFIG = message('T', int16(1), field('set_config', 25, -1));
const DATA_ITEM = message('D', int16(2), int32(1), Buffer.from('1'), int32(6), Buffer.from('item 1'));
const DATA_SET_CONFIG = message('D', int16(1), int32(36), Buffer.from('00000000-0000-0000-0000-000000000000'));
const SELECT_1 = message('C', cstring('SELECT 1'));
const READY = { I: message('Z', Buffer.from('I')), T: message('Z', Buffer.from('T')) };
const ROW_PID = message('T', int16(1), field('pid', 23, 4));

/** Backend pids of the fake sessions, announced at login (BackendKeyData) and by pg_backend_pid(). */
let lastPid = 1000;

/**
 * The first two C strings of a message's body (Parse: name, text; Bind: portal, statement), not
 * a split of the whole body: a Bind's parameters (lengths full of NUL bytes) would otherwise be
 * cut into many strings, a cost that grows with each parameter and is charged to the client's
 * CPU. A function of the module, not a closure made per message: under tsx each closure made
 * costs a call of its `__name` helper (Object.defineProperty), ~20 % of the CPU measured per
 * statement in b, more in variants that send more messages.
 */
function firstStrings(body: Buffer): [string, string] {
  const end1 = body.indexOf(0);
  const end2 = body.indexOf(0, end1 + 1);
  return [body.toString('utf8', 0, end1), body.toString('utf8', end1 + 1, end2)];
}

/**
 * An in-process stand-in for a PostgreSQL server, given to node-postgres as its `stream`:
 * it answers the extended and simple protocol with canned rows on the next turn of the event
 * loop. With no network and no server work, the CPU a variant spends per query is the
 * client library's own (node-postgres, TenantPool, AsyncLocalStorage), plus this stand-in.
 */
export class FakePostgresStream extends Duplex {
  #pending: Buffer = Buffer.alloc(0);
  #started = false;
  #out: Buffer[] = [];
  #status: 'I' | 'T' = 'I';
  readonly #statements = new Map<string, string>();
  #portalText = '';
  readonly #pid = ++lastPid;

  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  connect(): this {
    setImmediate(() => this.emit('connect'));
    return this;
  }
  override _read(): void {}
  override _write(chunk: Buffer, _: BufferEncoding, done: (error?: Error | null) => void): void {
    this.#consume(chunk);
    done();
  }
  override _writev(chunks: Array<{ chunk: Buffer }>, done: (error?: Error | null) => void): void {
    for (const c of chunks) this.#consume(c.chunk);
    done();
  }
  override _final(done: () => void): void {
    done();
    setImmediate(() => {
      this.push(null);
      this.emit('close');
    });
  }

  #consume(chunk: Buffer): void {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    if (!this.#started) {
      if (this.#pending.length < 4) return;
      const len = this.#pending.readInt32BE(0);
      if (this.#pending.length < len) return;
      this.#pending = this.#pending.subarray(len);
      this.#started = true;
      // BackendKeyData, and pg_backend_pid() answers the same pid (below): TenantPool's pooler
      // self-test then finds a direct connection, so the named forms ('auto', prepareStatements)
      // switch on here as they do on a real server, and the b+prep+named variants measure them
      this.#out.push(message('R', int32(0)), message('K', int32(this.#pid), int32(0)), READY.I);
      this.#flush();
    }
    while (this.#pending.length >= 5) {
      const len = this.#pending.readInt32BE(1);
      if (this.#pending.length < len + 1) return;
      const type = String.fromCharCode(this.#pending[0]!);
      this.#handle(type, this.#pending.subarray(5, len + 1));
      this.#pending = this.#pending.subarray(len + 1);
    }
  }

  #handle(type: string, body: Buffer): void {
    switch (type) {
      case 'P': {
        const [name, text] = firstStrings(body);
        this.#statements.set(name!, text!);
        this.#out.push(PARSE_COMPLETE);
        break;
      }
      case 'B': {
        const [, statement] = firstStrings(body);
        this.#portalText = this.#statements.get(statement!) ?? '';
        this.#out.push(BIND_COMPLETE);
        break;
      }
      case 'D':
        this.#out.push(this.#portalText.includes('set_config') ? ROW_SET_CONFIG : ROW_ITEM);
        break;
      case 'E':
        this.#out.push(this.#portalText.includes('set_config') ? DATA_SET_CONFIG : DATA_ITEM, SELECT_1);
        break;
      case 'S':
        this.#out.push(READY[this.#status]);
        this.#flush();
        break;
      case 'H':
        this.#flush();
        break;
      case 'C':
        this.#out.push(CLOSE_COMPLETE);
        break;
      case 'Q': {
        const [text] = firstStrings(body);
        const command = (text ?? '').trim().split(/\s+/)[0]!.toUpperCase();
        if (command === 'BEGIN') this.#status = 'T';
        if (command === 'COMMIT' || command === 'ROLLBACK') this.#status = 'I';
        if ((text ?? '').includes('pg_backend_pid()')) {
          const pid = Buffer.from(String(this.#pid));
          this.#out.push(ROW_PID, message('D', int16(1), int32(pid.length), pid));
          this.#out.push(message('C', cstring('SELECT 1')), READY[this.#status]);
          this.#flush();
          break;
        }
        this.#out.push(message('C', cstring(command)), READY[this.#status]);
        this.#flush();
        break;
      }
      case 'X':
        break;
      default:
        throw new Error(`fake postgres: unexpected message ${type}`);
    }
  }

  #flush(): void {
    const out = Buffer.concat(this.#out);
    this.#out = [];
    setImmediate(() => this.push(out));
  }
}
