import type { ResolvedTable, RowKey } from './table-spec.js';

const INTEGER = /^-?\d{1,30}$/;
const UUID = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)([0-9a-f]{12})$/i;
const UUID_TAIL = 2n ** 48n;

/**
 * Values an intruder would try next to one it saw: n-1 and n+1 for an integer, the UUIDs whose
 * last group is one lower or higher (sequential or time-ordered UUIDs). Other types: none.
 */
export function neighbourValues(value: string): string[] {
  if (INTEGER.test(value)) {
    const n = BigInt(value);
    return [(n - 1n).toString(), (n + 1n).toString()];
  }
  const uuid = UUID.exec(value);
  if (uuid) {
    const tail = BigInt(`0x${uuid[2]}`);
    return [tail - 1n, tail + 1n].map((t) =>
      `${uuid[1]}${((t + UUID_TAIL) % UUID_TAIL).toString(16).padStart(12, '0')}`.toLowerCase(),
    );
  }
  return [];
}

/** Keys next to `keys` (one id column changed to a neighbour at a time), without `keys` themselves. */
export function guessKeys(table: ResolvedTable, keys: readonly RowKey[]): RowKey[] {
  const seen = new Set(keys.map((k) => JSON.stringify(table.idColumns.map((c) => k[c]))));
  const guesses: RowKey[] = [];
  for (const key of keys) {
    for (const column of table.idColumns) {
      for (const value of neighbourValues(key[column]!)) {
        const guess = { ...key, [column]: value };
        const id = JSON.stringify(table.idColumns.map((c) => guess[c]));
        if (seen.has(id)) continue;
        seen.add(id);
        guesses.push(guess);
      }
    }
  }
  return guesses;
}
