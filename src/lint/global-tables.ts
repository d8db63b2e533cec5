import { matchesAnyName } from './file-glob.js';

/**
 * True when `table` is listed in `globalTables`. An entry with a dot (`app_private.users`,
 * `audit.*`) matches the schema-qualified name; one without (`plans`) matches the table's own
 * name in any schema. `*` stands for any run of characters; case does not matter.
 */
export function isGlobalTable(table: string, globalTables: readonly string[]): boolean {
  const bare = table.slice(table.lastIndexOf('.') + 1);
  return globalTables.some((entry) => matchesAnyName(entry.includes('.') ? table : bare, [entry]));
}
