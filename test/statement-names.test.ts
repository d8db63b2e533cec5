// prepareStatements' bounds on what one connection names (src/data/statement-names.ts): the
// server keeps each named statement's plan for the session's life, so the count and the text
// named are bounded, and a name given up after DDL still counts (the server may still hold it).
import { describe, expect, it } from 'vitest';
import { StatementNames, staleNamedStatement } from '../src/data/statement-names.js';

describe('StatementNames', () => {
  it('names at most 256 texts per connection, a text again under its name', () => {
    const names = new StatementNames({ named: true });
    for (let i = 1; i <= 256; i++) expect(names.nameOf(`select $1::int + ${i}`, [1])).toBe(`tenantry_s${i}`);
    expect(names.nameOf('select $1::int + 257', [1])).toBeUndefined();
    expect(names.nameOf('select $1::int + 7', [1])).toBe('tenantry_s7');
  });

  it('names at most 128 KiB of text per connection, each text at most 16 KiB', () => {
    const names = new StatementNames({ named: true });
    const text = (i: number, size: number) => `select $1 /* ${i} */`.padEnd(size, ' ');
    expect(names.nameOf(text(0, 16_385), [1])).toBeUndefined();
    let named = 0;
    for (let i = 1; i <= 20; i++) if (names.nameOf(text(i, 16_000), [1]) !== undefined) named++;
    expect(named).toBe(8); // 8 × 16,000 ≤ 131,072 < 9 × 16,000
    expect(names.nameOf('select $1::int', [1])).toBe('tenantry_s9'); // a short one still fits
  });

  it('a name given up (0A000 after DDL) still counts against the bound', () => {
    const names = new StatementNames({ named: true });
    for (let i = 1; i <= 256; i++) {
      const t = `select $1::int + ${i}`;
      names.forget(t, names.nameOf(t, [1])!);
    }
    expect(names.nameOf('select $1::int + 1', [1])).toBeUndefined();
  });

  it('names nothing while the form is unnamed, nor statements without parameters', () => {
    const form = { named: false };
    const names = new StatementNames(form);
    expect(names.nameOf('select $1::int', [1])).toBeUndefined();
    form.named = true;
    expect(names.nameOf('select 1', [])).toBeUndefined();
    expect(names.nameOf('select $1::int', [1])).toBe('tenantry_s1');
  });

  it('42P05 is not a stale name to retry under a fresh one (the session quarantine refuses it); 26000 is', () => {
    expect(staleNamedStatement({ code: '42P05' })).toBe(false);
    expect(staleNamedStatement({ code: '26000' })).toBe(true);
  });
});
