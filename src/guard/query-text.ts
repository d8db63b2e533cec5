/**
 * The SQL text of the first argument of `pg` `query()`: a string, a `{ text }` config, or a
 * submittable (pg-cursor, pg-query-stream) carrying `text`. Undefined when there is none.
 * For wiring the guard into a pool: `const text = queryText(config); if (text) guard.check(text);`
 */
export function queryText(config: unknown): string | undefined {
  if (typeof config === 'string') return config;
  if (config && typeof config === 'object' && typeof (config as { text?: unknown }).text === 'string')
    return (config as { text: string }).text;
  return undefined;
}
