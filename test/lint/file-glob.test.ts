import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { matchesAnyGlob, matchesAnyName } from '../../src/lint/file-glob.js';

const cwd = path.resolve('/repo');
const file = (rel: string) => path.join(cwd, rel);

describe('matchesAnyGlob (allow options)', () => {
  it('matches relative to the cwd: ** any folders (none too), * and ? within one segment, dotfiles included', () => {
    expect(matchesAnyGlob(file('src/db/pool.ts'), ['src/**/*.ts'], cwd)).toBe(true);
    expect(matchesAnyGlob(file('src/pool.ts'), ['src/**/*.ts'], cwd)).toBe(true);
    expect(matchesAnyGlob(file('src/db/pool.ts'), ['src/*.ts'], cwd)).toBe(false);
    expect(matchesAnyGlob(file('src/db/pool.ts'), ['./src/db/poo?.ts'], cwd)).toBe(true);
    expect(matchesAnyGlob(file('scripts/.seed.ts'), ['scripts/*'], cwd)).toBe(true);
    expect(matchesAnyGlob(file('test/a.ts'), [], cwd)).toBe(false);
  });

  it('matches an absolute pattern against the absolute path', () => {
    expect(matchesAnyGlob(file('src/x.ts'), [`${cwd.split(path.sep).join('/')}/src/*.ts`], cwd)).toBe(true);
    expect(matchesAnyGlob(file('lib/x.ts'), [`${cwd.split(path.sep).join('/')}/src/*.ts`], cwd)).toBe(false);
  });
});

describe('matchesAnyName (global tables)', () => {
  it('matches case-insensitively, * standing for any run of characters', () => {
    expect(matchesAnyName('public.plans', ['public.*'])).toBe(true);
    expect(matchesAnyName('AUDIT_log', ['audit_*'])).toBe(true);
    expect(matchesAnyName('notes', ['note'])).toBe(false);
    expect(matchesAnyName('plans', ['plans', 'x'])).toBe(true);
  });
});
