/**
 * `DROP DATABASE … WITH (FORCE)` for a test's clean-up, after the database's backends had a moment
 * to go on their own. pg-pool's `end()` resolves before every socket has closed: a backend still
 * closing when the forced drop terminates it sends 57P01 to a client nobody listens to any more,
 * and vitest reports that as an unhandled error after every test passed (CI runs 12 and 16). So the
 * drop first waits (bounded: `waitMs`, polling pg_stat_activity) until no session is connected to
 * the database, then forces out whatever is still there (a pool the test left open on purpose).
 */
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function dropDatabase(
  q: Queryable | undefined,
  name: string,
  { waitMs = 1000, ifExists = true }: { waitMs?: number; ifExists?: boolean } = {},
): Promise<void> {
  if (!q) return;
  const until = Date.now() + waitMs;
  for (;;) {
    const { rows } = await q.query(
      'select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [name],
    );
    if ((rows[0] as { n: number }).n === 0 || Date.now() >= until) break;
    await sleep(25);
  }
  const quoted = `"${name.replaceAll('"', '""')}"`;
  await q.query(`drop database ${ifExists ? 'if exists ' : ''}${quoted} with (force)`);
}
