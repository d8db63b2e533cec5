import type { z } from 'zod';

type RawIssue = z.core.$ZodRawIssue;
type Where = 'body' | 'query' | 'params';

const PART: Record<Where, string> = { body: 'the body', query: 'the query string', params: 'the path' };
// an unknown key is named back only when it is a plain identifier: never markup, control
// characters or a pasted secret, and short
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
const ARTICLE: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
};

/**
 * A schema-level message that names the field ("<field> is required" when it is missing), e.g.
 * `z.string().regex(UUID, { error: say((field) => `${field} must be a UUID`) })`.
 */
export function say(message: (field: string) => string): (issue: RawIssue) => string {
  return (issue) => {
    const field = pathName(issue.path) ?? 'value';
    return issue.code === 'invalid_type' && issue.input === undefined ? `${field} is required` : message(field);
  };
}

/** The field an issue is about: its path, a plainly named unknown key, or the part of the request. */
export function fieldOf(issue: z.core.$ZodIssue, where: Where): string {
  if (issue.path.length > 0) return pathName(issue.path)!;
  if (issue.code === 'unrecognized_keys' && IDENTIFIER.test(issue.keys[0] ?? '')) return issue.keys[0]!;
  return where;
}

/**
 * zod's default messages ("expected number, received NaN") in the API's words, naming the field
 * and never the value sent. Used for every issue whose schema gave no message of its own.
 */
export function apiMessage(issue: RawIssue, where: Where): string {
  const field = pathName(issue.path);
  const name = field ?? PART[where];
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return field ? `${field} is required` : `Send ${PART[where]} as a JSON object`;
      if (!field && issue.expected === 'object') return `${capital(PART[where])} must be a JSON object`;
      return `${name} must be ${ARTICLE[issue.expected] ?? `of type ${issue.expected}`}`;
    case 'too_small':
      if (issue.origin === 'string')
        return Number(issue.minimum) <= 1
          ? `${name} must not be empty`
          : `${name} must be at least ${issue.minimum} characters`;
      if (issue.origin === 'number' || issue.origin === 'int') return `${name} must be at least ${issue.minimum}`;
      return `${name} is too short`;
    case 'too_big':
      if (issue.origin === 'string') return `${name} must be at most ${issue.maximum} characters`;
      if (issue.origin === 'number' || issue.origin === 'int') return `${name} must be at most ${issue.maximum}`;
      return `${name} is too long`;
    case 'invalid_value':
      return `${name} must be one of: ${issue.values.map(String).join(', ')}`;
    case 'invalid_format':
      return `${name} is not in the expected format`;
    case 'unrecognized_keys': {
      const key = issue.keys[0] ?? '';
      return IDENTIFIER.test(key)
        ? `${key} is not a field of ${PART[where]}`
        : `${capital(PART[where])} has a field this route does not accept`;
    }
    default:
      return `${name} is not valid`;
  }
}

function pathName(path: readonly PropertyKey[] | undefined): string | undefined {
  return path && path.length > 0 ? path.map(String).join('.') : undefined;
}

function capital(text: string): string {
  return text[0]!.toUpperCase() + text.slice(1);
}
