// The import's id remap (AES-128 per id, a chunk at a time) and its order-independent row digest.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IdBatch, IdRemap } from '../../src/lifecycle/export/id-remap.js';
import { RowSetDigest } from '../../src/lifecycle/export/row-digest.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('IdRemap', () => {
  it('maps an id to the same fresh v4 uuid every time, either case, and distinct ids apart', () => {
    const remap = new IdRemap();
    const ids = Array.from({ length: 2000 }, () => randomUUID());
    const mapped = ids.map((id) => remap.map(id)!);
    for (const m of mapped) expect(m).toMatch(V4);
    expect(new Set(mapped).size).toBe(ids.length);
    expect(ids.map((id) => remap.map(id.toUpperCase()))).toEqual(mapped);
    expect(mapped.some((m, i) => m === ids[i])).toBe(false);
    // another import's key: other ids
    expect(new IdRemap().map(ids[0]!)).not.toBe(mapped[0]);
  });

  it('refuses what is not a uuid', () => {
    const remap = new IdRemap();
    for (const bad of ['', 'x', '123', `${randomUUID().slice(0, 35)}g`, randomUUID().replaceAll('-', '_')])
      expect(remap.map(bad)).toBeUndefined();
  });

  it('a batch over a chunk gives what map gives one by one', () => {
    const remap = new IdRemap();
    const ids = Array.from({ length: 5000 }, () => randomUUID());
    const text = Buffer.from(ids.join('\t'), 'latin1');
    const batch = new IdBatch(remap, 16); // grows
    ids.forEach((_, i) => expect(batch.add(text, i * 37, i)).toBe(true));
    batch.run();
    ids.forEach((_, i) => batch.write(text, i * 37, i));
    expect(text.toString('latin1').split('\t')).toEqual(ids.map((id) => remap.map(id)));
  });
});

describe('RowSetDigest', () => {
  const rows = Array.from({ length: 500 }, (_, i) => Buffer.from(`${randomUUID()}\trow ${i}\t${'x'.repeat(i % 40)}\n`));
  const seed = new Uint32Array([1, 2, 3, 4]);
  const digest = (list: Buffer[], s = seed) => {
    const d = new RowSetDigest(s);
    for (const r of list) d.add(r);
    return d.value();
  };

  it('is the same in any order, and for rows inside a larger buffer', () => {
    const all = Buffer.concat(rows);
    const d = new RowSetDigest(seed);
    let at = 0;
    for (const r of rows) d.add(all, at, (at += r.length));
    expect(digest([...rows].reverse())).toBe(digest(rows));
    expect(d.value()).toBe(digest(rows));
  });

  it('changes with any byte of any row, a missing or a repeated row, and with the seed', () => {
    const base = digest(rows);
    for (const i of [0, 17, 499]) {
      for (const at of [0, 5, rows[i]!.length - 2]) {
        const changed = rows.map((r) => Buffer.from(r));
        changed[i]![at] = changed[i]![at]! ^ 1;
        expect(digest(changed)).not.toBe(base);
      }
    }
    expect(digest(rows.slice(1))).not.toBe(base);
    expect(digest([...rows.slice(1), rows[2]!])).not.toBe(base);
    expect(digest(rows, new Uint32Array([1, 2, 3, 5]))).not.toBe(base);
  });
});
