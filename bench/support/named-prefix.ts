import type pg from 'pg';
import { CONTEXT_PREFIX_SQL } from '../../src/data/context-prefix.js';

const STATEMENT = 'tenantry_context_prefix';

interface PatchableConnection {
  parse(config: { text: string; name?: string; types?: unknown[] }): void;
  bind(config: { statement?: string; values: unknown[] }): void;
}

/**
 * Bench-only experiment: turns the context prefix's unnamed Parse (sent with every
 * statement) into a named statement parsed once per connection, then only Bind/Execute.
 * Measures what re-parsing `select set_config(...)` costs; not product code.
 */
export function preparePrefixPerConnection(pool: pg.Pool): void {
  pool.on('connect', (client) => {
    const connection = (client as unknown as { connection: PatchableConnection }).connection;
    const parse = connection.parse.bind(connection);
    const bind = connection.bind.bind(connection);
    let prepared = false;
    let pending = false;
    connection.parse = (config) => {
      if (config.text === CONTEXT_PREFIX_SQL && !config.name) {
        pending = true;
        if (!prepared) {
          parse({ ...config, name: STATEMENT });
          prepared = true;
        }
        return;
      }
      pending = false;
      parse(config);
    };
    connection.bind = (config) => {
      if (pending) {
        pending = false;
        bind({ ...config, statement: STATEMENT });
        return;
      }
      bind(config);
    };
  });
}
