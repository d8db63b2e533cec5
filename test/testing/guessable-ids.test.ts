import { describe, expect, it } from 'vitest';
import { neighbourValues, resolveTable } from '../../src/testing/index.js';
import { guessKeys } from '../../src/testing/guessable-ids.js';

describe('neighbourValues', () => {
  it('steps integers and the last group of a UUID by one, wrapping within the group', () => {
    expect(neighbourValues('41')).toEqual(['40', '42']);
    expect(neighbourValues('9007199254740993')).toEqual(['9007199254740992', '9007199254740994']);
    expect(neighbourValues('0190a1b2-c3d4-7e5f-8a9b-00000000000a')).toEqual([
      '0190a1b2-c3d4-7e5f-8a9b-000000000009',
      '0190a1b2-c3d4-7e5f-8a9b-00000000000b',
    ]);
    expect(neighbourValues('0190A1B2-C3D4-7E5F-8A9B-FFFFFFFFFFFF')).toEqual([
      '0190a1b2-c3d4-7e5f-8a9b-fffffffffffe',
      '0190a1b2-c3d4-7e5f-8a9b-000000000000',
    ]);
    expect(neighbourValues('invoice-7')).toEqual([]);
  });

  it('guesses one column at a time and never repeats a known key', () => {
    const table = resolveTable({
      table: 't',
      idColumns: ['a', 'b'],
      columns: () => ({}),
      update: { column: 'x', value: 1 },
    });
    expect(
      guessKeys(table, [
        { a: '1', b: '5' },
        { a: '2', b: '5' },
      ]),
    ).toEqual([
      { a: '0', b: '5' },
      { a: '1', b: '4' },
      { a: '1', b: '6' },
      { a: '3', b: '5' },
      { a: '2', b: '4' },
      { a: '2', b: '6' },
    ]);
  });
});
