import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressLine, progressReporter } from '../../src/cli/progress-reporter.js';

/** A stream that keeps what is written to it. */
function capture(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  Object.assign(out, { isTTY, columns: 100 });
  return { stream: out as unknown as NodeJS.WriteStream, text: () => chunks.join('') };
}

describe('progressReporter', () => {
  it('without a terminal, prints each phase once with its final count, never its starting one', async () => {
    const { stream, text } = capture(false);
    const progress = progressReporter({ stream, label: 'move 1a2b3c4d', intervalMs: 60_000 });
    progress.update({ phase: 'copying notes', done: 0, total: 3, unit: 'rows' });
    progress.update({ phase: 'copying notes', done: 3, total: 3, unit: 'rows' });
    progress.update({ phase: 'copying tags', done: 0, total: 0, unit: 'rows' });
    progress.note('failed home/db/t_a');
    progress.update({ phase: 'catching up', detail: 'backlog 12' });
    progress.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(text()).toBe(
      [
        'move 1a2b3c4d  copying notes  3/3 rows (100%)',
        'failed home/db/t_a',
        'move 1a2b3c4d  copying tags  0/0 rows (100%)',
        'move 1a2b3c4d  catching up  backlog 12',
        '',
      ].join('\n'),
    );
  });

  it('without a terminal, logs a long phase every interval', async () => {
    const { stream, text } = capture(false);
    const progress = progressReporter({ stream, intervalMs: 0 });
    progress.update({ phase: 'migrate', done: 1, total: 4, unit: 'targets' });
    progress.update({ phase: 'migrate', done: 2, total: 4, unit: 'targets' });
    progress.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(text()).toBe('migrate  1/4 targets (25%)\nmigrate  2/4 targets (50%)\n');
  });

  it('on a terminal, draws a cli-progress bar and leaves each phase with its final count', async () => {
    const { stream, text } = capture(true);
    const progress = progressReporter({ stream, label: 'migrate' });
    progress.update({ phase: 'targets', done: 1, total: 2, unit: 'targets' });
    progress.update({ phase: 'targets', done: 2, total: 2, unit: 'targets' });
    progress.stop();
    await new Promise((resolve) => setImmediate(resolve));
    expect(text()).toMatch(/migrate {2}targets {2}\[=+\] {2}2\/2 targets \(100%\)/);
  });

  it('formats a line without a total or a count', () => {
    expect(progressLine(undefined, { phase: 'cleaning notes', done: 7, unit: 'rows deleted' })).toBe(
      'cleaning notes  7 rows deleted',
    );
    expect(progressLine('x', { phase: 'verifying' })).toBe('x  verifying');
  });
});
