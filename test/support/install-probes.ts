import type pg from 'pg';

/** Anything with a superuser pool on one database (a TestDatabase, a ClusterDatabase). */
interface WithAdmin {
  admin: pg.Pool;
}

/** The install digest `tenantry.meta` records in that database, if any. */
export async function storedDigest(db: WithAdmin): Promise<string | undefined> {
  const { rows } = await db.admin.query<{ value: string }>(
    `select value from tenantry.meta where key = 'install_digest'`,
  );
  return rows[0]?.value;
}

/** Whether a function with this signature exists in that database. */
export async function hasFunction(db: WithAdmin, signature: string): Promise<boolean> {
  const { rows } = await db.admin.query<{ present: boolean }>('select to_regprocedure($1) is not null as present', [
    signature,
  ]);
  return rows[0]!.present;
}
