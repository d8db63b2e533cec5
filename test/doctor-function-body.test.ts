// What a function body names, read with PostgreSQL's parser (no database needed).
import { beforeAll, describe, expect, it } from 'vitest';
import { bodyReferences, type FunctionSource } from '../src/policy/doctor/function-body-references.js';
import { loadSqlParser } from '../src/guard/sql-parser.js';

const fn = (language: string, source: string, extra: Partial<FunctionSource> = {}): FunctionSource => ({
  language,
  source,
  nameSql: 'f',
  arguments: '',
  result: 'bigint',
  ...extra,
});
const names = (refs: { schema: string | null; name: string }[]) =>
  refs.map((r) => (r.schema ? `${r.schema}.${r.name}` : r.name)).sort();

describe('bodyReferences', () => {
  beforeAll(() => loadSqlParser());

  it('reads the relations and calls of a LANGUAGE sql body, leaving CTE names out', () => {
    const refs = bodyReferences(
      fn(
        'sql',
        `with recent as (select * from public.notes where at > now() - interval '1 day')
         select count(*) from recent join tags t using (tenant_id) where app.visible(t.name);
         insert into audit.log (what) values ('counted')`,
      ),
    );
    expect(names(refs.relations)).toEqual(['audit.log', 'public.notes', 'tags']);
    expect(names(refs.calls)).toEqual(['app.visible', 'count', 'now']);
    expect(refs).toMatchObject({ parsed: true, dynamic: false });
  });

  it('reads every statement and expression of a plpgsql body: declarations, assignments, loops, RETURN QUERY, cursors', () => {
    const refs = bodyReferences(
      fn(
        'plpgsql',
        `declare
           total bigint := (select count(*) from public.a);
           c cursor for select * from public.b;
           r record;
         begin
           f.total := total + (select count(*) from c_table);
           for r in select * from public.d loop
             perform public.touch(r.id);
           end loop;
           return query select count(*) from public.e;
         end`,
        { arguments: 'total bigint', result: 'SETOF bigint' },
      ),
    );
    expect(names(refs.relations)).toEqual(['c_table', 'public.a', 'public.b', 'public.d', 'public.e']);
    expect(names(refs.calls)).toContain('public.touch');
    expect(refs).toMatchObject({ parsed: true, dynamic: false });
  });

  it('flags SQL built at run time, and bodies it cannot read', () => {
    expect(bodyReferences(fn('plpgsql', `begin execute 'select 1'; return 1; end`)).dynamic).toBe(true);
    expect(
      bodyReferences(fn('plpgsql', `declare r record; begin for r in execute 'select 1' loop end loop; return 1; end`))
        .dynamic,
    ).toBe(true);
    expect(bodyReferences(fn('sql', 'select from where')).parsed).toBe(false);
    expect(bodyReferences(fn('plpythonu', 'return 1')).parsed).toBe(false);
    // a BEGIN ATOMIC body has no source text: pg_depend records its references
    expect(bodyReferences(fn('sql', ''))).toEqual({ relations: [], calls: [], dynamic: false, parsed: true });
  });
});
