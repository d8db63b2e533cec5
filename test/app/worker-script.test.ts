import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// A process manager signals npm; npm passes the signal to its script's shell: without `exec`, the
// shell (not node) gets it and the worker is left orphaned. Both process scripts exec node.
describe('package.json process scripts', () => {
  const scripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;
  it.each(['start', 'worker'])('%s execs node (a signal to npm reaches the process)', (name) => {
    expect(scripts[name]).toMatch(/^(?:[A-Z_]+=\S+ )*exec node /);
  });
});
