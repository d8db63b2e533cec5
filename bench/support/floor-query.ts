import pg from 'pg';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';

/**
 * The floor of any transaction-local, pooler-safe context: raw pg, plus ONE pipelined statement
 * (`set_config(…, true)`, the least that sets a transaction-local value) written in front of the
 * query's own Parse/Bind/Execute, before its single Sync. Written minimally, on purpose without
 * TenantPool/TenantClient (no AsyncLocalStorage, no guard, no result check, no refusal logic), so
 * `b/floor` shows what Tenantry adds above the wire protocol's own cost of a context.
 */
const NOOP_SQL = `select set_config('${CONTEXT_SETTING}', $1, true)`;
const NOOP_NAME = 'bench_floor_noop';

interface Wire {
  stream: { cork?: () => void; uncork?: () => void };
  parse(config: { text: string; name?: string; types?: unknown[] }): void;
  bind(config: { statement?: string; values: unknown[] }): void;
  execute(config: { portal?: string }): void;
}

interface QueryInternals {
  submit(connection: Wire): Error | null | undefined;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: Wire): void;
}
const Query = pg.Query as unknown as new (config: pg.QueryConfig) => QueryInternals;

/** Connections on which the named no-op was parsed already. */
const prepared = new WeakSet<Wire>();

/** A pg.Query preceded by the no-op statement; its DataRow and CommandComplete are swallowed. */
export class FloorQuery extends Query {
  #pending = true;
  readonly #value: string;
  readonly #named: boolean;

  constructor(config: pg.QueryConfig, value: string, named: boolean) {
    super(config);
    this.#value = value;
    this.#named = named;
  }

  override submit(connection: Wire): Error | null | undefined {
    connection.stream.cork?.();
    try {
      if (!this.#named) {
        connection.parse({ text: NOOP_SQL, types: [] });
        connection.bind({ values: [this.#value] });
      } else {
        if (!prepared.has(connection)) {
          connection.parse({ text: NOOP_SQL, name: NOOP_NAME, types: [] });
          prepared.add(connection);
        }
        connection.bind({ statement: NOOP_NAME, values: [this.#value] });
      }
      connection.execute({});
      return super.submit(connection);
    } finally {
      connection.stream.uncork?.();
    }
  }

  override handleDataRow(msg: unknown): void {
    if (!this.#pending) super.handleDataRow(msg);
  }

  override handleCommandComplete(msg: unknown, connection: Wire): void {
    if (this.#pending) this.#pending = false;
    else super.handleCommandComplete(msg, connection);
  }
}

/** Runs `config` after the no-op on a client of `pool`, resolving to its result. */
export async function floorQuery(
  pool: pg.Pool,
  config: pg.QueryConfig,
  value: string,
  named: boolean,
): Promise<pg.QueryResult> {
  const client = await pool.connect();
  try {
    const result = await new Promise<pg.QueryResult>((resolve, reject) => {
      const query = new FloorQuery(config, value, named) as unknown as pg.Submittable & {
        callback?: (err: Error | null, res: pg.QueryResult) => void;
      };
      query.callback = (err, res) => (err ? reject(err) : resolve(res));
      client.query(query);
    });
    client.release();
    return result;
  } catch (error) {
    client.release(error as Error);
    throw error;
  }
}
