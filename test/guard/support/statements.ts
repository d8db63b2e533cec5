// Statements for the analyzer's tests: tenant tables public.notes (tenant_id, the 2nd column:
// notes(id, tenant_id, body)), public.comments (tenant_id) and billing.invoices (org_id); users is
// not a tenant table. The map is `tables` below. Shared by the unit tests and by
// the test that runs them on PostgreSQL.

/** Statements the guard must let through. */
export const scoped: string[] = [
  'select * from notes where tenant_id = $1',
  'select * from notes n where n.tenant_id = $1 and n.id = $2',
  "select * from public.notes where public.notes.tenant_id = 'a7c1a1c2-0000-4000-8000-000000000001'",
  'select * from notes where tenant_id = $1::uuid',
  'select * from notes where tenant_id = tenantry.current_tenant_id()',
  'select * from notes where tenant_id = (select tenantry.current_tenant_id())',
  // the proven tenant without the route check (pinned tables): a tenant scope all the same
  'select * from notes where tenant_id = (select tenantry.home_tenant_id())',
  'select * from notes where tenant_id in ($1)',
  'select * from notes where tenant_id is not distinct from $1',
  'select * from notes n join comments c on c.note_id = n.id and c.tenant_id = n.tenant_id where n.tenant_id = $1',
  'select * from notes n join comments c on c.tenant_id = n.tenant_id and c.note_id = n.id where $1 = n.tenant_id',
  'select * from notes n left join comments c on c.note_id = n.id and c.tenant_id = n.tenant_id where n.tenant_id = $1',
  'select * from notes join comments using (tenant_id) where tenant_id = $1',
  'select * from invoices where org_id = $1',
  'select * from billing.invoices i where i.org_id = $1',
  'select * from users where id = $1',
  'with mine as (select * from notes where tenant_id = $1) select * from mine',
  'select * from notes n where n.tenant_id = $1 and exists (select 1 from comments c where c.note_id = n.id and c.tenant_id = n.tenant_id)',
  'select id, (select count(*) from comments c where c.tenant_id = $1 and c.note_id = n.id) from notes n where n.tenant_id = $1',
  'select * from (select * from notes where tenant_id = $1) x',
  'select id from notes where tenant_id = $1 union all select id from comments where tenant_id = $1',
  'insert into notes (tenant_id, body) values ($1, $2)',
  'insert into notes (tenant_id, body) values ($1, $2) on conflict (id) do update set body = excluded.body',
  'insert into notes (tenant_id, body) select tenant_id, body from comments where tenant_id = $1',
  'update notes set body = $2 where tenant_id = $1 and id = $3',
  'update notes n set body = c.body from comments c where c.note_id = n.id and n.tenant_id = $1 and c.tenant_id = n.tenant_id',
  'delete from notes where id = $1 and tenant_id = $2',
  'delete from notes n using comments c where c.note_id = n.id and c.tenant_id = $1 and n.tenant_id = c.tenant_id',
  'merge into notes n using (values ($2::int, $3::text)) s(id, body) on n.tenant_id = $1 and n.id = s.id when matched then update set body = s.body',
  'merge into notes n using comments c on n.tenant_id = $1 and c.tenant_id = n.tenant_id and n.id = c.note_id when matched then delete',
  'merge into notes n using (values ($2::int)) s(id) on n.tenant_id = $1 and n.id = s.id when not matched then insert (tenant_id, id) values ($1, s.id)',
  'copy (select * from notes where tenant_id = $1) to stdout',
  'explain select * from notes where tenant_id = $1',
  "select set_config('application_name', 'x', false)",
  'set statement_timeout = 1000',
  'select "notes"."id" from "public"."notes" where "notes"."tenant_id" = $1',
  'select * from "notes" as "n" where "n"."tenant_id"::text = $1',
  'with mine as (select * from notes where tenant_id = $1) select * from mine m join comments c on c.tenant_id = m.tenant_id and c.note_id = m.id',
  'with mine as (select n.tenant_id as tid, n.id from notes n where n.tenant_id = $1) select * from comments c join mine on c.tenant_id = mine.tid',
  'select * from (select id, tenant_id from notes where tenant_id = $1) x join comments c on c.tenant_id = x.tenant_id',
  'select * from notes n, lateral (select * from comments c where c.tenant_id = n.tenant_id and c.note_id = n.id) x where n.tenant_id = $1',
  'select u.id, n.body from users u join notes n on n.tenant_id = u.tenant_id where u.id = $2 and u.tenant_id = $1',
  'select u.id, n.body from users u left join notes n on n.tenant_id = u.tenant_id and n.id = $2 where u.tenant_id = $1',
  'select * from "NOTES"', // a different table: quoted names keep their case
  'begin',
  'commit',
  // row comparisons: pairwise equalities
  'select * from notes where (tenant_id, id) = ($1, $2)',
  'select * from notes n where row(n.tenant_id, n.id) = row($1, $2)',
  'select * from notes where (tenant_id, id) is not distinct from ($1, $2)',
  'select * from notes where (tenant_id, id) in (($1, 1), ($1, 2))',
  'select * from notes where (id, tenant_id) in ((1, $1))',
  'select * from notes n join comments c on (c.tenant_id, c.note_id) = (n.tenant_id, n.id) where n.tenant_id = $1',
  // INSERT without a column list: the tenant column is the 2nd
  'insert into notes values (1, $1, $2)',
  'insert into notes values (1, $1), (2, $1)',
  'insert into notes select id, tenant_id, body from comments where tenant_id = $1',
  // MERGE: WHEN conditions scope the rows their clause acts on
  'merge into notes n using (values (1)) s(id) on n.tenant_id = $1 and n.id = s.id when matched then update set body = $2 when not matched by source and n.tenant_id = $1 then delete',
  'merge into notes n using (values (1)) s(id) on n.id = s.id when matched and n.tenant_id = $1 then delete',
  'merge into notes n using (values (1)) s(id) on n.id = s.id when matched then do nothing when not matched by source and n.tenant_id = $1 then delete',
  'merge into notes n using comments c on n.tenant_id = $1 and c.tenant_id = n.tenant_id and n.id = c.note_id when not matched and c.tenant_id = $1 then insert (tenant_id, id) values (c.tenant_id, c.note_id)',
];

/** Statements the guard must flag, with the tables flagged and (optionally) the reason. */
export const unscoped: Array<[string, string[], RegExp?]> = [
  ['select * from notes', ['public.notes'], /select has no tenant_id predicate/],
  ['select * from notes where id = $1', ['public.notes']],
  ['select "notes"."id" from "public"."notes" where "notes"."id" = $1', ['public.notes']],
  ['select * from notes where tenant_id = $1 or id = $2', ['public.notes']],
  ['select * from notes where tenant_id = any($1)', ['public.notes']],
  ['select * from notes where tenant_id is null', ['public.notes']],
  ['select * from notes where tenant_id = evil.current_tenant_id()', ['public.notes']],
  ['select * from notes where tenant_id = evil.home_tenant_id()', ['public.notes']],
  ['select * from notes n where tenant_id = n.tenant_id', ['public.notes']],
  ['select * from billing.invoices', ['billing.invoices']],
  ['select * from invoices where tenant_id = $1', ['billing.invoices']],
  ['with all_notes as (select * from notes) select * from all_notes', ['public.notes'], /in a CTE/],
  ['select * from (select * from notes) x where x.tenant_id = $1', ['public.notes'], /in a subquery/],
  [
    'select * from comments c where c.tenant_id = $1 and c.note_id in (select id from notes)',
    ['public.notes'],
    /in a subquery/,
  ],
  [
    'select id, (select count(*) from comments where note_id = n.id) from notes n where n.tenant_id = $1',
    ['public.comments'],
  ],
  ['select * from notes n join comments c on c.note_id = n.id where n.tenant_id = $1', ['public.comments']],
  ['select * from notes n join comments c on c.tenant_id = n.tenant_id', ['public.notes', 'public.comments']],
  [
    'with all_notes as (select * from notes) select * from all_notes a join comments c on c.tenant_id = a.tenant_id',
    ['public.notes', 'public.comments'],
  ],
  [
    'with mine as (select * from notes where tenant_id = $1 and id in (select note_id from comments)) select * from mine m join comments c on c.tenant_id = m.tenant_id',
    ['public.comments'],
  ],
  [
    'select * from (select id from notes where tenant_id = $1) x join comments c on c.note_id = x.id',
    ['public.comments'],
  ],
  [
    'select * from (select id, tenant_id from notes where tenant_id = $1 union select id, tenant_id from notes) x join comments c on c.tenant_id = x.tenant_id',
    ['public.notes', 'public.comments'],
  ],
  [
    'select * from notes n, lateral (select * from comments c where c.tenant_id = n.tenant_id) x',
    ['public.notes', 'public.comments'],
  ],
  // documented false positive: c is in fact limited to $1 through n, which itself is not scoped
  [
    'select * from notes n left join comments c on n.tenant_id = $1 and c.tenant_id = n.tenant_id',
    ['public.notes', 'public.comments'],
  ],
  [
    'select * from notes n full join comments c on c.tenant_id = n.tenant_id where n.tenant_id = $1',
    ['public.comments'],
  ],
  ['select * from notes n join users u on u.tenant_id = n.tenant_id where u.id = $1', ['public.notes']],
  ['select * from users u left join notes n on n.tenant_id = u.tenant_id and u.tenant_id = $1', ['public.notes']],
  [
    'select * from notes n join users u on u.tenant_id = n.tenant_id where u.tenant_id = $1 or u.id = $2',
    ['public.notes'],
  ],
  ['select id from notes where tenant_id = $1 union select id from comments', ['public.comments']],
  ['insert into notes (body) values ($1)', ['public.notes'], /insert does not set tenant_id/],
  ['insert into notes values ($1)', ['public.notes'], /insert does not set tenant_id/],
  ['insert into notes values (1, $1), (2)', ['public.notes']],
  ['insert into notes default values', ['public.notes']],
  ['insert into notes select * from comments where tenant_id = $1', ['public.notes']],
  ['insert into notes select 1, $1 union all select 2, $1', ['public.notes']],
  ['select * from notes where (tenant_id, id) in (($1, 1), ($2, 2))', ['public.notes']],
  ['select * from notes where (tenant_id, id) > ($1, $2)', ['public.notes']],
  ['select * from notes where (tenant_id, id) = ($1, $2) or id = $3', ['public.notes']],
  [
    'select * from notes n join comments c on (c.tenant_id, c.note_id) = (n.id, n.id) where n.tenant_id = $1',
    ['public.comments'],
  ],
  [
    'merge into notes n using (values (1)) s(id) on n.tenant_id = $1 and n.id = s.id when not matched by source and n.id = 2 then delete',
    ['public.notes'],
  ],
  [
    'merge into notes n using (values (1)) s(id) on n.tenant_id = $1 and n.id = s.id when not matched by source and (n.tenant_id = $1 or n.id = 2) then delete',
    ['public.notes'],
  ],
  // the join decides what is not matched: the insert depends on every tenant's rows
  [
    'merge into notes n using (values (1)) s(id) on n.id = s.id when matched and n.tenant_id = $1 then delete when not matched then insert (tenant_id, id) values ($1, s.id)',
    ['public.notes'],
  ],
  [
    'merge into notes n using comments c on n.tenant_id = $1 and n.id = c.note_id when matched and c.tenant_id = $1 then delete when not matched by source and n.tenant_id = $1 then delete',
    ['public.comments'],
  ],
  ['insert into notes (tenant_id, body) select tenant_id, body from comments', ['public.comments']],
  ['insert into notes (body) select body from comments where tenant_id = $1', ['public.notes']],
  ['update notes set body = $1 where id = $2', ['public.notes'], /update has no tenant_id predicate/],
  ['update notes n set body = c.body from comments c where c.note_id = n.id and c.tenant_id = $1', ['public.notes']],
  ['update notes n set body = c.body from comments c where c.note_id = n.id and n.tenant_id = $1', ['public.comments']],
  ['delete from notes where id = $1', ['public.notes'], /delete has no tenant_id predicate/],
  ['delete from notes n using comments c where c.note_id = n.id and c.tenant_id = $1', ['public.notes']],
  [
    'merge into notes n using comments c on n.id = c.note_id when matched then delete',
    ['public.notes', 'public.comments'],
    /merge has no tenant_id predicate/,
  ],
  [
    'merge into notes n using (values (1)) s(id) on n.tenant_id = $1 and n.id = s.id when not matched by source then delete',
    ['public.notes'],
    /merge has no tenant_id predicate/,
  ],
  [
    'merge into notes n using comments c on n.tenant_id = $1 and c.tenant_id = n.tenant_id when not matched then insert (tenant_id, id) values (c.tenant_id, c.id)',
    ['public.comments'],
  ],
  [
    'merge into notes n using (values (1)) s(id) on n.tenant_id = $1 and n.id = s.id when not matched then insert (id) values (s.id)',
    ['public.notes'],
    /merge insert does not set tenant_id/,
  ],
  ['copy notes to stdout', ['public.notes'], /copy of a whole tenant table/],
  ['copy notes from stdin', ['public.notes'], /copy into a whole tenant table/],
  ['copy (select * from notes) to stdout', ['public.notes'], /in a copy query/],
  ['truncate notes', ['public.notes'], /truncate/],
  ['lock table notes in access exclusive mode', ['public.notes'], /lock table locks every tenant/],
  ['lock notes', ['public.notes'], /lock table/],
  ['explain analyze select * from notes', ['public.notes']],
  [
    'with d as (delete from notes where id = $1 returning *) select * from d',
    ['public.notes'],
    /delete has no tenant_id predicate \(in a CTE\)/,
  ],
  ['select * from notes where tenant_id = $1; select * from comments', ['public.comments']],
];

/** The analyzer tests' map: notes' tenant column is its 2nd (for INSERT without a column list). */
export const TABLES = [
  { table: 'public.notes', position: 2 },
  'public.comments',
  { table: 'billing.invoices', column: 'org_id' },
];
