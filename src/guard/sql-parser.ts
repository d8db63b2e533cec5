import { loadModule } from 'libpg-query';
import { ConfigurationError } from '../errors/tenantry-error.js';

let loading: Promise<void> | undefined;
let loaded = false;

/**
 * Loads the PostgreSQL parser (libpg-query, WebAssembly). Call once at start-up, before the
 * first {@link analyzeStatement} or `QueryGuard.check`; later calls return the same promise.
 */
export function loadSqlParser(): Promise<void> {
  loading ??= loadModule().then(() => {
    loaded = true;
  });
  return loading;
}

/** Whether {@link loadSqlParser} has finished. */
export function isSqlParserLoaded(): boolean {
  return loaded;
}

/** Throws a ConfigurationError when the parser is not loaded yet. */
export function assertSqlParserLoaded(): void {
  if (!loaded)
    throw new ConfigurationError(
      'The SQL parser is not loaded: await loadSqlParser() (or QueryGuard.ready()) once at start-up',
    );
}
