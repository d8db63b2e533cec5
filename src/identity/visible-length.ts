// Visible: a letter, number, punctuation mark or symbol (Unicode L, N, P, S). Everything else is
// not counted: format characters (Cf: zero-width spaces and joiners, bidi marks), controls (Cc),
// separators (Zs, Zl, Zp), combining marks on their own (M: they only decorate a base), private
// use, unassigned and lone surrogates (Co, Cn, Cs).
const VISIBLE = /[\p{L}\p{N}\p{P}\p{S}]/u;
// Letters and symbols that render as nothing: the default-ignorable code points (Hangul fillers
// U+115F, U+1160, U+3164, U+FFA0 are letters by category) and the blank Braille pattern U+2800.
const BLANK = /[\p{Default_Ignorable_Code_Point}\u2800]/u;

/**
 * How many characters of `text` a reader actually sees: letters, numbers, punctuation and
 * symbols, one per code point. Zero-width and other format characters, controls, every kind of
 * space, combining marks (counted with their base, never on their own) and blank fillers count
 * zero, so `'\u200B'.repeat(12)`, `'   '` and `'\u0301\u0301'` all have a visible length of 0.
 * Hand-written: no library answers "how much of this can a person read" (grapheme splitters
 * count invisible clusters too), and Unicode property escapes make it a few lines.
 *
 * @example
 * visibleLength('Ticket #4711'); // 11: the space does not count
 * visibleLength('\u200B'.repeat(12)); // 0
 */
export function visibleLength(text: string): number {
  let count = 0;
  for (const char of text) if (VISIBLE.test(char) && !BLANK.test(char)) count++;
  return count;
}

// Controls (C0, DEL, C1: line breaks, escape sequences) and the bidi embeddings, overrides and
// isolates that reorder what follows them on screen.
const DECEPTIVE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/**
 * Whether `text` holds characters that change how a log line or a page shows what comes after
 * them: control characters (CR/LF start a forged line, ESC a terminal colour) or bidi overrides.
 * A reason, written to an audit log that people read, must hold none.
 *
 * @example
 * hasDeceptiveCharacters('ticket 1\r\nInjected: yes'); // true
 */
export function hasDeceptiveCharacters(text: string): boolean {
  return DECEPTIVE.test(text);
}
