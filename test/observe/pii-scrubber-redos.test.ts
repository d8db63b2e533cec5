import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { PiiScrubber } from '../../src/observe/index.js';

/*
 * The scrubber runs on Fastify's request line (the URL, up to the ~16 KB of head Node accepts)
 * before any authentication: no input may make it super-linear. Each adversarial shape of 8 and
 * 16 KB is timed against a benign text of the same length that also takes the full path (both
 * start with an address, so neither returns at the cheap candidate test); no absolute threshold,
 * so a loaded machine slows both sides alike. Linear means: adversarial within 20× benign, and
 * doubling the length at most 8× the time (quadratic would be 4×, but timings on a shared
 * machine are noisy; cubic, the bug this guards against, is 8× and far more at these sizes).
 */

const scrubber = new PiiScrubber();
const PREFIX = 'mail ann@acme.example ';
const fill = (unit: string, length: number): string =>
  PREFIX + unit.repeat(Math.ceil((length - PREFIX.length) / unit.length)).slice(0, length - PREFIX.length);
const base64ish = (length: number): string => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let out = '';
  for (let i = 0; out.length < length; i++) out += alphabet[(i * 7 + (i >> 3)) % alphabet.length];
  return out;
};

/**
 * Milliseconds per call for each input: the fastest of seven batches (the least disturbed by other
 * processes and by garbage collection), each batch long enough (≥ 4 ms) for the timer and the JIT
 * to settle. The inputs take turns batch by batch, so a burst of load hits all of them alike.
 */
function timesOf(scrub: (s: string) => string, inputs: readonly string[]): number[] {
  const calls = inputs.map((input) => {
    let n = 1;
    for (const started = performance.now(); performance.now() - started < 4 && n < 1000; n++) scrub(input);
    return n;
  });
  const best = inputs.map(() => Infinity);
  for (let batch = 0; batch < 7; batch++)
    inputs.forEach((input, i) => {
      const started = performance.now();
      for (let c = 0; c < calls[i]!; c++) scrub(input);
      best[i] = Math.min(best[i]!, (performance.now() - started) / calls[i]!);
    });
  return best;
}

const SHAPES: Array<[string, (length: number) => string]> = [
  ['?token repeated (the reported cubic hint)', (n) => fill('?token', n)],
  ['&a repeated', (n) => fill('&a', n)],
  ['?a= and + runs', (n) => fill('?a=+', n)],
  ['aKey repeated (camelCase names, no =)', (n) => fill('aKey', n)],
  ['a long parameter name', (n) => `${PREFIX}?${'a'.repeat(n - PREFIX.length - 1)}`],
  ['digits', (n) => fill('4', n)],
  ['digits and dots', (n) => fill('1.', n)],
  ['digits and dashes', (n) => fill('4-', n)],
  ['digits and spaces', (n) => fill('0 ', n)],
  ['dashes', (n) => fill('-', n)],
  ['@ repeated', (n) => fill('@', n)],
  ['a.@ repeated', (n) => fill('a.@', n)],
  ['a domain of many labels, no TLD', (n) => `${PREFIX}x@${'a.'.repeat((n - PREFIX.length) / 2 - 2)}1`],
  ['+ repeated', (n) => fill('+', n)],
  ['+1 repeated', (n) => fill('+1', n)],
  ['%41 repeated', (n) => fill('%41', n)],
  ['base64-ish', (n) => PREFIX + base64ish(n - PREFIX.length)],
  ['eyJ- repeated (JWT starts)', (n) => fill('eyJ-', n)],
  ['eyJaaaaa. repeated', (n) => fill('eyJaaaaa.', n)],
  ['tnry_- repeated', (n) => fill('tnry_-', n)],
  ['a. repeated (URL schemes)', (n) => fill('a.', n)],
  ['x://u: repeated', (n) => fill('x://u:', n)],
  ['authorization: repeated', (n) => fill('authorization: ', n)],
  ['Bearer repeated', (n) => fill('Bearer ', n)],
  ['colons and hex (IPv6 candidates)', (n) => fill('1:', n)],
  ['IBAN-like groups', (n) => fill('DE89 ', n)],
  [
    'nested brackets',
    (n) => `${PREFIX}?a${'['.repeat((n - PREFIX.length) / 2 - 1)}${']'.repeat((n - PREFIX.length) / 2 - 1)}`,
  ],
  ['array brackets', (n) => fill('[0]', n)],
  ['zero-width characters', (n) => fill('a\u200B', n)],
];

const benign = (length: number): string => fill('lorem ipsum dolor sit amet, ', length);

/**
 * Whether `make`'s input scrubs within the bounds; up to four tries, since a timing on a shared
 * machine can be hit by another process or a garbage collection. A super-linear pattern misses
 * every try (it is off by orders of magnitude, not a few per cent).
 */
function assertLinear(
  scrub: (s: string) => string,
  make: (n: number) => string,
  benignOf: (n: number) => string,
): void {
  // 8 KB alone first: a super-linear pattern fails here in seconds, not at 16 KB in minutes
  const [first = 0, firstBenign = 0] = timesOf(scrub, [make(8192), benignOf(8192)]);
  let seen = `8 KB: ${first.toFixed(3)} ms against ${firstBenign.toFixed(3)} ms benign`;
  if (first <= 20 * firstBenign || first < 1)
    for (let attempt = 0; attempt < 4; attempt++) {
      const [small = 0, large = 0, largeBenign = 0] = timesOf(scrub, [make(8192), make(16384), benignOf(16384)]);
      seen = `16 KB: ${large.toFixed(3)} ms against ${largeBenign.toFixed(3)} ms benign and ${small.toFixed(3)} ms at 8 KB`;
      if (large <= 20 * largeBenign && large <= 8 * small) return;
    }
  expect.fail(`not linear: ${seen} (${make(40).slice(PREFIX.length)}…)`);
}

describe('PiiScrubber: linear time on adversarial input (ReDoS)', () => {
  it.each(SHAPES)('%s: 16 KB within 20× a benign text, and about linear from 8 to 16 KB', (_name, make) => {
    assertLinear((s) => scrubber.text(s), make, benign);
    // as a field of a serialized line (the JSON scan, then each string): serialized outside the
    // timing, so both sides measure the scrubber alone
    const asLine = (n: number): string => JSON.stringify({ url: make(n) });
    const benignLine = (n: number): string => JSON.stringify({ url: benign(n) });
    assertLinear((s) => scrubber.line(s), asLine, benignLine);
  });

  it('an unterminated JSON string of escaped quotes is linear too', () => {
    const line = (n: number): string => `{"msg":"${PREFIX}","x":"${'\\"'.repeat(n / 2)}`;
    const benignLine = (n: number): string => `{"msg":"${PREFIX}","x":"${'ab'.repeat(n / 2)}`;
    assertLinear((s) => scrubber.line(s), line, benignLine);
  });
});
