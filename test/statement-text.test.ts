import { describe, expect, it } from 'vitest';
import {
  controlsTransaction,
  hasMultipleStatements,
  isLoneTransactionEnd,
  statementHeads,
} from '../src/data/statement-text.js';

describe('hasMultipleStatements', () => {
  it.each([
    'select 1',
    'select 1;',
    'select 1 ; -- trailing comment',
    "select 'a;b'",
    "select 'it''s; fine'",
    "select E'\\'; still one'",
    'select "odd;name" from t',
    'select $$ a; b $$',
    'select $fn$ x; $$ y; $fn$',
    'select 1 /* a; /* nested; */ b; */',
    '-- only; a comment\nselect 1',
    'select $1::int',
  ])('sees one statement in %j', (sql) => expect(hasMultipleStatements(sql)).toBe(false));

  it.each([
    'select 1; select 2',
    "select 'a'; delete from t",
    'begin; select 1; commit',
    'select $$x$$; select 2',
    "select E'\\\\'; select 2",
    'select 1 /* c */ ; /* c */ select 2',
    'select 1;\n-- c\nselect 2',
  ])('sees several statements in %j', (sql) => expect(hasMultipleStatements(sql)).toBe(true));
});

describe('isLoneTransactionEnd', () => {
  it.each([
    'rollback',
    'ROLLBACK;',
    ' abort ',
    'commit',
    'end transaction',
    'rollback to savepoint sp1',
    'ROLLBACK TO sp_2;',
    'commit and chain',
  ])('accepts %j', (sql) => expect(isLoneTransactionEnd(sql)).toBe(true));
  it.each([
    'rollback; select 1',
    'rollback select',
    'commit; delete from t',
    'select 1',
    'rollback to savepoint a; select 1',
    undefined,
  ])('refuses %j', (sql) => expect(isLoneTransactionEnd(sql)).toBe(false));
});

describe('statementHeads and controlsTransaction', () => {
  it('names the first word of each statement, past comments and quotes', () => {
    expect(statementHeads("select 'commit; x'; /* c */ Commit ; -- end\n update t set a = $$;rollback$$")).toEqual([
      'select',
      'commit',
      'update',
    ]);
    expect(statementHeads(' ; ; ')).toEqual([]);
  });
  it.each([
    'select 1; commit',
    'select 1;\nROLLBACK',
    'insert into t values (1); end',
    'select 1; prepare transaction $$x$$',
    'select 1; abort',
    'select 1; begin',
  ])('sees transaction control in %j', (sql) => expect(controlsTransaction(sql)).toBe(true));
  it.each(["select 'commit'; select 2", 'select 1; -- commit\n select 2', 'update t set committed = true; select 1'])(
    'sees none in %j',
    (sql) => expect(controlsTransaction(sql)).toBe(false),
  );
});
