import type { MoveRun } from './move-run.js';
import type { MoveTable } from './move-tables.js';
import type { TableChecksum } from './row-copier.js';

/** A table whose two sides differ: what each side's checksum found. */
// a type, not an interface: it travels as MoveError's details (a plain record)
export type Mismatch = {
  table: string;
  source: unknown;
  target: unknown;
};

/** Both sides' checksums, and whether they agree. */
export interface SideSums {
  same: boolean;
  source: TableChecksum;
  target: TableChecksum;
}

/**
 * Runs a checksum on both sides (`run(textHash)` answers [source, target]); when one side could
 * not hash by type and the other could, both again by the row's text: both must hash the same way.
 */
export async function bothSides<T extends { textHash: boolean }>(
  run: (textHash: boolean) => Promise<readonly [T, T]>,
  textHash: boolean,
): Promise<readonly [T, T]> {
  const first = await run(textHash);
  return first[0].textHash === first[1].textHash ? first : run(true);
}

/** Count and checksum of the tenant's whole table on both sides. */
export async function wholeSums(run: MoveRun, t: MoveTable, textHash: boolean): Promise<SideSums> {
  const copier = run.copiers.get(t.sourceOid)!;
  const [source, target] = await bothSides(
    (text) => Promise.all([copier.checksum(run.source, 'source', text), copier.checksum(run.target, 'target', text)]),
    textHash,
  );
  return {
    same: source.rows === target.rows && source.hash === target.hash,
    source: { rows: source.rows, hash: source.hash },
    target: { rows: target.rows, hash: target.hash },
  };
}

/** `verify: 'full'` (and logical capture): every table whole, in the freeze; the first that differs. */
export async function verifyAll(run: MoveRun): Promise<Mismatch | undefined> {
  const results = await Promise.all(
    run.tables.map(async (t) => ({ table: t.name, ...(await wholeSums(run, t, false)) })),
  );
  const bad = results.find((r) => !r.same);
  return bad && { table: bad.table, source: bad.source, target: bad.target };
}
