import type { TestDatabase } from './test-database.js';

/** A row of {@link createNotesTable}: the tenant and the body. */
export type NoteRow = readonly [tenant: string, body: string];

/** The DDL of the tests' `notes` table, unqualified: also what a schema or database tier is provisioned with. */
export const NOTES_DDL = `
  create table notes (
    tenant_id uuid not null default tenantry.current_tenant_id(),
    id uuid not null default gen_random_uuid(),
    body text not null,
    created_at timestamptz not null default now(),
    primary key (tenant_id, id)
  );
  select tenantry.register_tenant_table('notes');`;

/**
 * Creates the tests' `notes` tenant table as the owner, registers it, and inserts `rows`:
 * `notes(tenant_id uuid default tenantry.current_tenant_id(), id uuid default
 * gen_random_uuid(), body text, created_at timestamptz default now(), primary key (tenant_id, id))`.
 * The tenant column defaults to the tenant in context, so an app may leave it out of an insert
 * (the policy's WITH CHECK still refuses another tenant's value).
 *
 * @example
 * await createNotesTable(db, [[A, 'a1'], [B, 'b1']]);
 */
export async function createNotesTable(db: TestDatabase, rows: readonly NoteRow[] = []): Promise<void> {
  await db.owner.query(NOTES_DDL);
  if (rows.length > 0) {
    await db.owner.query('insert into notes (tenant_id, body) select * from unnest($1::uuid[], $2::text[])', [
      rows.map((r) => r[0]),
      rows.map((r) => r[1]),
    ]);
  }
}
