import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sqlStateOf } from '../errors/sqlstate.js';

/**
 * How the connections reach PostgreSQL: `none` (the pool talks to PostgreSQL itself), `session`
 * (a pooler that gives each client connection its own server connection for as long as it is
 * connected), `transaction` (server connections are shared: a client connection's next
 * transaction may run on another backend; statement pooling looks the same), `unknown`.
 */
export type PoolingMode = 'none' | 'session' | 'transaction' | 'unknown';

/** What {@link detectPooler} found. Plain data: JSON-serialisable, no secret, no row. */
export interface PoolerDetection {
  /**
   * `none`: PostgreSQL answers itself. `pgbouncer`: identified (its admin console, or its names
   * for prepared statements). `proxy`: something answers for PostgreSQL, not identified.
   * `unknown`: the self-test could not tell (it failed or ran out of time).
   */
  pooler: 'none' | 'pgbouncer' | 'proxy' | 'unknown';
  mode: PoolingMode;
  /**
   * pgbouncer's version when its admin console answered `SHOW VERSION` to this role (`1.18.0`),
   * `>=1.21` when it was seen managing prepared statements, otherwise undefined: pgbouncer tells a
   * normal connection nothing about itself.
   */
  version?: string;
  /**
   * Whether a named prepared statement is still there in the connection's next transaction:
   * `safe` (direct, session pooling, or a pooler that manages them, such as pgbouncer ≥ 1.21 with
   * `max_prepared_statements`), `unsafe`, `unknown`.
   */
  namedStatements: 'safe' | 'unsafe' | 'unknown';
  /** `server_version` as reported at login (a pooler passes PostgreSQL's on). */
  serverVersion?: string;
  /** What was observed, in short sentences (no secret, no data). */
  evidence: string[];
  durationMs: number;
}

/** Options of {@link detectPooler}. */
export interface DetectPoolerOptions {
  /** Bound of the whole self-test, in ms (default 3000): past it, the answer is `unknown`. */
  timeoutMs?: number;
  /**
   * When a pooler is seen, ask pgbouncer's admin console (database `pgbouncer`, same role) for
   * `SHOW VERSION` (default true). It answers only roles in its `admin_users` / `stats_users`; a
   * refusal still identifies pgbouncer, and costs one line in its log.
   */
  adminConsole?: boolean;
  /** Ends the self-test at once (its connections closed), answering `unknown`. */
  signal?: AbortSignal;
}

const DEFAULT_TIMEOUT_MS = 3000;
/** How long one client connection's statement may wait for a server while the other holds a transaction. */
const WAIT_FOR_SERVER_MS = 500;
const ROUNDS = 5;
/** How long each of pgbouncer's signs (a refused startup parameter, its admin console) may take. */
const SIGN_MS = 500;
const APPLICATION_NAME = 'tenantry pooler self-test';

class Stopped extends Error {}

/**
 * Finds out, through a normal connection, whether a pooler sits between the application and
 * PostgreSQL, how it pools, and whether named prepared statements are safe there. Cheap (one
 * connection and one statement when nothing is in between) and bounded (`timeoutMs`); never
 * throws: a failure answers `unknown`, with the reason in `evidence`.
 *
 * How: PostgreSQL announces its backend's pid at login (BackendKeyData); a pooler announces a key
 * of its own, so a `pg_backend_pid()` that differs shows something in between (pgbouncer does not
 * otherwise tell a client it is there, by design: pgbouncer#249, #653). Then two client
 * connections compare backends while one holds a transaction: if the second gets the backend the
 * first used, or the first's backend changes (or it must wait for one), server connections are
 * shared per transaction. A named statement that reaches `pg_prepared_statements` under its own
 * name is not managed by the pooler (pgbouncer ≥ 1.21 renames them `PGBOUNCER_n`).
 *
 * @example
 * const info = await detectPooler(process.env.APP_DATABASE_URL!);
 * if (info.mode === 'transaction' && info.namedStatements !== 'safe') console.warn('named statements would break here');
 */
export async function detectPooler(
  config: string | pg.ClientConfig,
  options: DetectPoolerOptions = {},
): Promise<PoolerDetection> {
  const started = performance.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const base: pg.ClientConfig = typeof config === 'string' ? { connectionString: config } : config;
  const clients = new Set<pg.Client>();
  const evidence: string[] = [];
  let serverVersion: string | undefined;
  let stop: (reason: string) => void = () => undefined;
  const stopped = new Promise<never>((_, reject) => {
    stop = (reason) => reject(new Stopped(reason));
  });
  stopped.catch(() => undefined);
  const timer = setTimeout(() => stop(`the self-test did not finish within ${timeoutMs} ms`), timeoutMs);
  timer.unref();
  const onAbort = () => stop('the self-test was stopped (the pool ended)');
  if (options.signal?.aborted) onAbort();
  else options.signal?.addEventListener('abort', onAbort, { once: true });
  /** Every wait of the self-test also ends when it is stopped. */
  const bounded = <T>(p: Promise<T>): Promise<T> => Promise.race([p, stopped]);

  const open = async (database?: string, extra: pg.ClientConfig = {}): Promise<pg.Client> => {
    const client = new pg.Client({
      ...base,
      ...(database === undefined ? {} : databaseOf(base, database)),
      application_name: APPLICATION_NAME,
      connectionTimeoutMillis: timeoutMs,
      ...extra,
    });
    client.on('error', () => undefined); // a connection lost meanwhile fails the statement that needed it
    const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection;
    connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => {
      if (m.parameterName === 'server_version') serverVersion ??= m.parameterValue;
    });
    clients.add(client);
    await bounded(client.connect());
    return client;
  };
  const pidOf = async (client: pg.Client): Promise<number> =>
    Number((await bounded(client.query<{ pid: number }>('select pg_backend_pid() as pid'))).rows[0]!.pid);

  const run = async (): Promise<Omit<PoolerDetection, 'evidence' | 'durationMs' | 'serverVersion'>> => {
    const a = await open();
    const first = await pidOf(a);
    if (first === (a as unknown as { processID: number | null }).processID) {
      evidence.push('the backend pid is the one announced at login: a direct connection');
      return { pooler: 'none', mode: 'none', namedStatements: 'safe' };
    }
    evidence.push('the backend pid differs from the one announced at login: a pooler or proxy answers for PostgreSQL');
    const b = await open();
    // Each round: A runs a statement (in transaction pooling its backend goes back to the pool,
    // on top: pgbouncer reuses the most recently released one by default), then B opens a
    // transaction and holds it while A runs another. A pooler that shares backends shows it by
    // giving B the backend A just had, by giving A another backend (this round, or since the
    // last), or by making A wait for one. A session pooler never does any of these.
    let mode = 'session' as PoolingMode; // widened: shared() changes it
    let previous = first;
    const shared = (why: string) => {
      mode = 'transaction';
      evidence.push(why);
    };
    for (let round = 0; round < ROUNDS && mode === 'session'; round++) {
      const before = round === 0 ? first : await pidOf(a);
      if (before !== previous) {
        shared("a client connection's backend changed between two of its transactions: transaction pooling");
        break;
      }
      if ((await within(bounded(b.query('begin')), WAIT_FOR_SERVER_MS)) === undefined) {
        // a pool with no backend free for B: A keeps one while idle (session pooling, pool
        // full) or other clients hold them all (a busy transaction pool): not conclusive
        mode = 'unknown';
        evidence.push(
          'a second client connection got no backend in time while the first sat idle: session pooling with a full pool, or a busy pool',
        );
        break;
      }
      const held = await pidOf(b);
      const next = pidOf(a);
      next.catch(() => undefined);
      const waited = await within(
        next.then(() => false),
        WAIT_FOR_SERVER_MS,
      );
      if (held === before)
        shared(
          'a second client connection got the backend the first had just used, the first still connected: server connections are shared per transaction',
        );
      else if (waited === undefined)
        shared(
          'a client connection waited for a backend while another held a transaction: it has none of its own (transaction pooling, small pool)',
        );
      await bounded(b.query('commit'));
      const after = await next;
      if (mode === 'session' && after !== before)
        shared("a client connection's backend changed between two of its transactions: transaction pooling");
      previous = after;
    }
    if (mode === 'session')
      evidence.push(`each client connection kept its own backend over ${ROUNDS} rounds: session pooling`);

    let namedStatements: PoolerDetection['namedStatements'] = mode === 'session' ? 'safe' : 'unknown';
    let pooler: PoolerDetection['pooler'] = 'proxy';
    let version: string | undefined;
    if (mode === 'transaction') {
      // inside one transaction, so the statement and its DEALLOCATE meet the same backend
      const name = `tenantry_probe_${randomBytes(6).toString('hex')}`;
      await bounded(a.query('begin'));
      const { rows } = await bounded(
        a.query<{ name: string }>({ name, text: 'select name from pg_catalog.pg_prepared_statements' }),
      );
      const names = rows.map((r) => r.name);
      if (names.includes(name)) {
        namedStatements = 'unsafe';
        evidence.push(
          'a named prepared statement reaches the server under its own name: the pooler does not manage prepared statements (pgbouncer before 1.21, or max_prepared_statements = 0)',
        );
        await bounded(a.query(`deallocate ${name}`));
      } else {
        namedStatements = 'safe';
        if (names.some((n) => n.startsWith('PGBOUNCER_'))) {
          pooler = 'pgbouncer';
          version = '>=1.21';
          evidence.push(
            'the pooler renames named prepared statements PGBOUNCER_n: pgbouncer 1.21 or later manages them',
          );
        } else evidence.push('the pooler renames named prepared statements: it manages them');
      }
      await bounded(a.query('commit'));
    }
    if (pooler === 'proxy' && (await refusesStartupParameter(open, bounded))) {
      pooler = 'pgbouncer';
      evidence.push('a login with a statement_timeout startup parameter was refused as pgbouncer refuses it');
    }
    if (options.adminConsole !== false) {
      const found = await askAdminConsole(open, bounded);
      if (found.version) {
        pooler = 'pgbouncer';
        version = found.version;
        evidence.push(`pgbouncer's admin console answered SHOW VERSION: ${found.version}`);
      } else if (found.refused) {
        pooler = 'pgbouncer';
        evidence.push(
          "pgbouncer's admin console refused this role (not in admin_users or stats_users): its version is not visible",
        );
      } else if (found.silent)
        evidence.push(
          `no admin console answered within ${SIGN_MS} ms (pgbouncer leaves the login of a role it looks up hanging)`,
        );
      else evidence.push('no pgbouncer admin console answered');
    }
    return { pooler, mode, namedStatements, ...(version === undefined ? {} : { version }) };
  };

  try {
    const found = await bounded(run());
    return { ...found, serverVersion, evidence, durationMs: elapsed(started) };
  } catch (error) {
    const reason =
      error instanceof Stopped
        ? error.message
        : `the self-test failed (${sqlStateOf(error) ?? (error as { code?: string }).code ?? 'no SQLSTATE'})`;
    evidence.push(reason);
    return {
      pooler: 'unknown',
      mode: 'unknown',
      namedStatements: 'unknown',
      serverVersion,
      evidence,
      durationMs: elapsed(started),
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    await Promise.all(
      [...clients].map((c) =>
        Promise.race([c.end(), new Promise((r) => setTimeout(r, 200).unref())]).catch(() => undefined),
      ),
    );
    // a connection still opening or stuck in end(): cut it
    for (const c of clients)
      (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
  }
}

/** Races `p` against a local bound: `undefined` when it did not answer within `ms`. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  p.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p, silence]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * pgbouncer's sign on a normal login: it refuses startup parameters it does not know (unless
 * listed in its ignore_startup_parameters) with its own text, where PostgreSQL accepts a
 * `statement_timeout` given at login. The text is the only sign it gives (08P01 is any protocol
 * violation). One login, bounded on its own.
 */
async function refusesStartupParameter(
  open: (database: string | undefined, extra: pg.ClientConfig) => Promise<pg.Client>,
  bounded: <T>(p: Promise<T>) => Promise<T>,
): Promise<boolean> {
  try {
    await within(bounded(open(undefined, { statement_timeout: 60_000 })), SIGN_MS);
    return false;
  } catch (error) {
    if (error instanceof Stopped) throw error;
    return /^unsupported startup parameter: statement_timeout$/i.test((error as Error).message);
  }
}

/**
 * SHOW VERSION on pgbouncer's admin console; `refused` when pgbouncer said "not allowed". Bounded
 * on its own (`SIGN_MS`): a pgbouncer that looks roles up with auth_query leaves the
 * login of a role outside admin_users hanging instead of refusing it, and what the self-test
 * found before must not be lost to that.
 */
async function askAdminConsole(
  open: (database: string) => Promise<pg.Client>,
  bounded: <T>(p: Promise<T>) => Promise<T>,
): Promise<{ version?: string; refused?: boolean; silent?: boolean }> {
  try {
    const answer = await within(
      (async () => {
        const admin = await open('pgbouncer');
        return bounded(admin.query('SHOW VERSION'));
      })(),
      SIGN_MS,
    );
    if (answer === undefined) return { silent: true };
    const { rows } = answer;
    const text = String(Object.values((rows[0] ?? {}) as Record<string, unknown>)[0] ?? '');
    const match = /PgBouncer\s+(\d+\.\d+(?:\.\d+)?)/i.exec(text);
    return match ? { version: match[1]! } : {};
  } catch (error) {
    if (error instanceof Stopped) throw error;
    // pgbouncer's own refusal of a role outside admin_users / stats_users: its text is the only
    // sign of it a normal role gets (no SQLSTATE of its own: 08P01 is any protocol violation)
    return /^not allowed$/i.test((error as Error).message) ? { refused: true } : {};
  }
}

/** The same connection settings, on another database (a connection string's path wins over `database` in pg). */
function databaseOf(base: pg.ClientConfig, database: string): pg.ClientConfig {
  if (!base.connectionString) return { database };
  const url = new URL(base.connectionString);
  url.pathname = `/${encodeURIComponent(database)}`;
  return { connectionString: url.toString() };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}

/** One line for logs and `tenantry doctor`: what sits in front of PostgreSQL and how it pools. */
export function describePooler(info: PoolerDetection): string {
  const who =
    info.pooler === 'none'
      ? 'no pooler (direct connection)'
      : info.pooler === 'pgbouncer'
        ? `pgbouncer${info.version ? ` ${info.version}` : ' (version not visible)'}`
        : info.pooler === 'proxy'
          ? 'a pooler or proxy (not identified)'
          : 'unknown';
  const mode =
    info.mode === 'none' ? '' : info.mode === 'unknown' ? ', pooling mode unknown' : `, ${info.mode} pooling`;
  const named = info.pooler === 'none' ? '' : `; named prepared statements ${info.namedStatements}`;
  return `${who}${mode}${named}`;
}
