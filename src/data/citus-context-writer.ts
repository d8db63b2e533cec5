import { CONTEXT_SETTING } from '../policy/install-sql.js';
import { TenantryError } from '../errors/tenantry-error.js';
import type { PrefixWriter, PrefixWritten, RoutedContext, SettingsContext, WireConnection } from './context-prefix.js';

/** Transaction status of the connection when a statement is written (`I` idle, `T` in a block, `E` failed). */
export type WriterTxStatus = 'I' | 'T' | 'E';

// A statement that opens a transaction block itself: the context follows it (SET LOCAL needs the block).
const BEGINS_TRANSACTION = /^\s*(begin|start\s+transaction)\b/i;
// Context values are `<uuid>[.<digits>[.<digits>]][.<hex>]` or empty: nothing that needs escaping,
// checked anyway because SET takes no bind parameter and the value travels as a literal.
const SAFE_VALUE = /^[0-9a-f.-]*$/;

/**
 * The context writer of Citus mode (`TenantPoolConfig.citus`). Citus carries to its worker
 * connections neither `set_config()` (a function call) nor a setting of the implicit transaction
 * of a pipeline: only `SET LOCAL`, inside a transaction block, with `citus.propagate_set_commands
 * = 'local'`. So a statement outside a transaction goes as Parse/Bind/Execute of `BEGIN`,
 * `SET LOCAL citus.propagate_set_commands`, `SET LOCAL tenantry.context`, the statement, then
 * `COMMIT`, all before the statement's single Sync: still one round trip. Inside the
 * application's own transaction only the two SET LOCALs go in front (Citus sends a SET LOCAL to
 * the worker connections the transaction already has, and to those it opens later). Each message
 * is one statement: Citus forwards the text of some commands to the workers as it is.
 */
export class CitusContextWriter implements PrefixWriter {
  readonly #timeout: string | undefined;
  readonly #status: () => WriterTxStatus;

  /** `status` reads the connection's transaction status when a statement is written. */
  constructor(status: () => WriterTxStatus, statementTimeoutMs?: number) {
    if (statementTimeoutMs !== undefined && !(Number.isInteger(statementTimeoutMs) && statementTimeoutMs > 0))
      throw new TypeError('statementTimeoutMs must be a positive whole number of milliseconds');
    this.#timeout = statementTimeoutMs === undefined ? undefined : String(statementTimeoutMs);
    this.#status = status;
  }

  write(
    connection: WireConnection,
    context: string | RoutedContext | SettingsContext,
    statementText?: string,
  ): PrefixWritten {
    if (typeof context !== 'string')
      throw new TenantryError('UNSUPPORTED', 'Citus mode does not route statements: use TenantPool', { status: 500 });
    if (!SAFE_VALUE.test(context)) throw new TypeError('tenant context value has unexpected characters');
    const sets = [
      `SET LOCAL citus.propagate_set_commands = 'local'`,
      `SET LOCAL ${CONTEXT_SETTING} = '${context}'`,
      ...(this.#timeout ? [`SET LOCAL statement_timeout = ${this.#timeout}`] : []),
    ];
    const inBlock = this.#status() !== 'I';
    if (inBlock) {
      for (const text of sets) send(connection, text);
      return { before: sets.length, after: 0, ownsTransaction: false };
    }
    if (typeof statementText === 'string' && BEGINS_TRANSACTION.test(statementText)) {
      // the application's own BEGIN: the SET LOCALs follow it, before its Sync
      afterStatement(connection, () => sets.forEach((text) => send(connection, text)));
      return { before: 0, after: sets.length, ownsTransaction: false };
    }
    send(connection, 'BEGIN');
    for (const text of sets) send(connection, text);
    afterStatement(connection, () => send(connection, 'COMMIT'));
    return { before: sets.length + 1, after: 1, ownsTransaction: true };
  }

  failed(): void {
    // nothing is prepared: nothing to forget
  }
}

function send(connection: WireConnection, text: string): void {
  connection.parse({ text, types: [] });
  connection.bind({ values: [] });
  connection.execute({});
}

/** Writes `suffix` just before the statement's Sync (pg's Query writes it as its last message). */
function afterStatement(connection: WireConnection, suffix: () => void): void {
  const target = connection as WireConnection & { sync: () => void };
  target.sync = function syncAfterSuffix(this: WireConnection) {
    delete (target as Partial<WireConnection>).sync; // back to the prototype's
    suffix();
    target.sync();
  };
}
