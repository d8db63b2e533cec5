import { normalizeSync } from 'libpg-query';

const MAX_SAMPLE = 2_000;

/**
 * The statement with every constant replaced by `$n` (libpg-query's normalize), whitespace
 * collapsed and capped: what a report may show. Never the statement's values.
 */
export function statementSample(sql: string): string {
  let text: string;
  try {
    text = normalizeSync(sql);
  } catch {
    return '[statement could not be normalized]';
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_SAMPLE ? `${text.slice(0, MAX_SAMPLE)}…` : text;
}
