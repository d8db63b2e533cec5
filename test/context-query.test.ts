// ContextQuery builds itself from the caller's config without pg's copy of it (see its
// constructor): the query must come out as pg's own Query would, field by field, for every shape
// of config pg accepts (text, config object, values and callback as arguments or in the config,
// row mode, type parsers). No database: this compares two constructors.
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { ContextQuery } from '../src/data/context-prefix.js';

const PgQuery = pg.Query as unknown as new (config: unknown, values?: unknown, callback?: unknown) => object;

/** pg's own fields of a query (ContextQuery's own are left out), its result's row mode and parsers. */
function fieldsOf(query: object): Record<string, unknown> {
  const q = query as Record<string, unknown> & { _result: Record<string, unknown>; _results: unknown };
  const pgFields = [
    'text',
    'values',
    'rows',
    'types',
    'name',
    'queryMode',
    'binary',
    'portal',
    'callback',
    '_rowMode',
    '_canceledDueToError',
  ];
  const out: Record<string, unknown> = {};
  for (const key of pgFields) out[key] = q[key];
  out.resultClass = q._result.constructor;
  out.rowAsArray = q._result.rowAsArray;
  out.resultTypes = q._result._types;
  out.resultsIsResult = q._results === q._result;
  out.parseRow = q._result.parseRow;
  return out;
}

const cb = () => undefined;
const other = () => undefined;
const types = { getTypeParser: () => (v: string) => v };

const cases: Array<[string, unknown, unknown?, unknown?]> = [
  ['text alone', 'select 1'],
  ['text and values', 'select $1', [1]],
  ['text, values, callback', 'select $1', [1], cb],
  ['text and a callback for values', 'select 1', cb],
  ['config object', { text: 'select $1', values: ['a'] }],
  ['config object, values as argument', { text: 'select $1', values: ['a'] }, ['b']],
  ['config object, empty values argument', { text: 'select $1', values: ['a'] }, undefined, cb],
  ['config object, callback in the config', { text: 'select 1', callback: cb }],
  ['config object, callback in both', { text: 'select 1', callback: other }, undefined, cb],
  ['config object, callback as values argument', { text: 'select 1', callback: other }, cb],
  [
    'every field',
    {
      text: 'select $1',
      values: [1],
      rows: 10,
      types,
      name: 'stmt',
      queryMode: 'extended',
      binary: true,
      portal: 'p1',
      rowMode: 'array',
    },
  ],
  ['row mode alone', { text: 'select 1', rowMode: 'array' }],
  ['type parsers alone', { text: 'select 1', types }],
  ['a name without text', { name: 'only_name', values: [] }],
  ['a config with a prototype of its own', Object.assign(Object.create({ text: 'inherited' }), { values: [1] })],
];

describe('ContextQuery built from a config', () => {
  it.each(cases)('%s: the same fields as pg.Query', (_, config, values, callback) => {
    const ours = fieldsOf(new ContextQuery(config, values, callback));
    const pgs = fieldsOf(new PgQuery(config, values, callback));
    expect(ours).toEqual(pgs);
    // the same functions, not merely equal ones
    expect(ours.callback).toBe(pgs.callback);
    expect(ours.parseRow).toBe(pgs.parseRow);
  });

  it('never changes the caller config', () => {
    const config = { text: 'select $1', values: [1], rowMode: 'array' };
    const before = JSON.stringify(config);
    new ContextQuery(config, [2], cb);
    expect(JSON.stringify(config)).toBe(before);
    expect(Object.keys(config)).toEqual(['text', 'values', 'rowMode']);
  });
});
