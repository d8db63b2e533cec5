import { colord, extend, type Plugin } from 'colord';
import a11yModule from 'colord/plugins/a11y';
import { z } from 'zod';
import { BrandInvalidError } from './branding-errors.js';
import type { LogoFacts } from './logo.js';

// colord's a11y plugin: WCAG 2.x relative luminance and contrast ratio (floored to 2 decimals,
// so a pair just under a threshold is never rounded up into passing)
// (its typings are CommonJS-flavoured: under NodeNext the default import is typed as the module)
extend([a11yModule as unknown as Plugin]);

/** The brand's colours, `#rrggbb` each. */
export interface BrandColors {
  /** Buttons and links. */
  primary: string;
  /** Text on `primary` (button labels). */
  onPrimary: string;
  /** The page. */
  background: string;
  /** Text on `background`. */
  text: string;
}

/** A tenant's brand as served. */
export interface Brand {
  displayName: string;
  colors: BrandColors;
  /** The display part of the From header of the tenant's e-mail (`"Acme Support" <no-reply@…>`). */
  emailSenderName: string;
  /** The logo's facts (its bytes are served apart), or `null`. */
  logo: LogoFacts | null;
}

/** What a change may give: any of the fields (the others keep their value). */
export interface BrandInput {
  displayName?: string;
  colors?: Partial<BrandColors>;
  emailSenderName?: string;
}

/** WCAG 2.x AA thresholds the colours are held to. */
export const CONTRAST_RULES = Object.freeze([
  // 1.4.3: body text
  { field: 'colors.text', fg: 'text', bg: 'background', min: 4.5, what: 'text on the background' },
  // 1.4.3: button labels
  { field: 'colors.onPrimary', fg: 'onPrimary', bg: 'primary', min: 4.5, what: 'button text on the primary colour' },
  // 1.4.11: user interface components (a button against the page)
  { field: 'colors.primary', fg: 'primary', bg: 'background', min: 3, what: 'the primary colour on the background' },
] as const);

/** The colours a tenant without its own gets (they pass every rule). */
export const DEFAULT_BRAND_COLORS: Readonly<BrandColors> = Object.freeze({
  primary: '#1f4fd1',
  onPrimary: '#ffffff',
  background: '#ffffff',
  text: '#1a1a1a',
});

const HEX = /^#[0-9a-fA-F]{6}$/;
// C0/C1 controls and DEL, line/paragraph separators, bidi embeddings, overrides and isolates
// (a display name that reorders the text around it), zero-width and BOM characters
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\ufeff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function safeText(field: string, max: number, extra?: { pattern: RegExp; message: string }) {
  return z
    .string({ error: `${field} must be text` })
    .transform((s) => s.normalize('NFC').trim())
    .superRefine((s, ctx) => {
      if (s.length < 1) ctx.addIssue({ code: 'custom', message: 'must not be empty' });
      else if ([...s].length > max) ctx.addIssue({ code: 'custom', message: `must be at most ${max} characters` });
      else if (LONE_SURROGATE.test(s)) ctx.addIssue({ code: 'custom', message: 'must not hold unpaired surrogates' });
      else if (UNSAFE.test(s))
        ctx.addIssue({
          code: 'custom',
          message: 'must not hold control characters, line breaks, bidirectional or invisible formatting characters',
        });
      else if (extra && extra.pattern.test(s)) ctx.addIssue({ code: 'custom', message: extra.message });
    });
}

const color = z
  .string({ error: 'must be a colour' })
  .regex(HEX, 'must be a colour written #rrggbb')
  .transform((s) => s.toLowerCase());

/**
 * The zod schema of a brand change. Strict: an unknown field is refused. Text is NFC-normalised
 * and trimmed; colours are `#rrggbb` (opaque: a contrast ratio over an unknown backdrop means
 * nothing), lower-cased.
 */
export const brandInputSchema = z
  .object({
    displayName: safeText('displayName', 80).optional(),
    colors: z
      .object({
        primary: color.optional(),
        onPrimary: color.optional(),
        background: color.optional(),
        text: color.optional(),
      })
      .strict()
      .optional(),
    // the display part of a From header: CR/LF (header injection) are control characters refused
    // above; quotes, backslashes and angle brackets are refused too, so the mailer's quoting is
    // trivial and no one writes "Support <ceo@bank.example>" as a name; so are `@` (a name that
    // reads as another address) and `=?` (an RFC 2047 encoded word, which mail clients decode
    // back into the refused characters)
    emailSenderName: safeText('emailSenderName', 64, {
      pattern: /["\\<>@]|=\?/,
      message: 'must not hold quotes, backslashes, angle brackets, @ or =? (an encoded word)',
    }).optional(),
  })
  .strict();

/** Parses a brand change (throws {@link BrandInvalidError} naming the first bad field). */
export function parseBrandInput(input: unknown): BrandInput {
  const parsed = brandInputSchema.safeParse(input);
  if (parsed.success) return parsed.data as BrandInput;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '?';
    throw new BrandInvalidError(path ? `${path}.${key}` : key, 'is not a brand field');
  }
  throw new BrandInvalidError(path || 'brand', issue.message);
}

/** The WCAG 2.x contrast ratio of two `#rrggbb` colours (1 to 21, floored to 2 decimals). */
export function contrastRatio(a: string, b: string): number {
  return colord(a).contrast(b);
}

/** Checks the colours against {@link CONTRAST_RULES}; throws {@link BrandInvalidError} naming the colour. */
export function checkContrast(colors: BrandColors): void {
  for (const rule of CONTRAST_RULES) {
    const ratio = contrastRatio(colors[rule.fg], colors[rule.bg]);
    if (ratio < rule.min)
      throw new BrandInvalidError(
        rule.field,
        `${rule.what} has a contrast of ${ratio.toFixed(2)}:1, WCAG AA needs at least ${rule.min}:1`,
      );
  }
}

/** Applies a parsed change to a brand and checks the result as a whole (contrast across colours). */
export function applyBrandInput(current: Brand, change: BrandInput): Brand {
  const next: Brand = {
    displayName: change.displayName ?? current.displayName,
    colors: { ...current.colors, ...stripUndefined(change.colors ?? {}) },
    emailSenderName: change.emailSenderName ?? current.emailSenderName,
    logo: current.logo,
  };
  checkContrast(next.colors);
  return next;
}

/**
 * The brand of a tenant that set none: its catalog name, the default colours, no logo. A name
 * the text rules would refuse is cleaned (controls dropped, cut to length) rather than failing.
 */
export function defaultBrand(tenantName: string): Brand {
  const clean = (s: string, max: number, drop: RegExp) =>
    [...s.normalize('NFC').replace(drop, '').trim()].slice(0, max).join('').trim() || 'Tenant';
  const unsafe = new RegExp(UNSAFE.source, 'g');
  return {
    displayName: clean(tenantName, 80, unsafe),
    colors: { ...DEFAULT_BRAND_COLORS },
    emailSenderName: clean(tenantName, 64, new RegExp(`${UNSAFE.source}|["\\\\<>@]|=\\?`, 'g')),
    logo: null,
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
