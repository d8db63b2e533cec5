import type { z } from 'zod';
import { validationFailed } from './api-error.js';

/**
 * Parses `input` (a body, query string or route params) with `schema`, or throws 400
 * VALIDATION_FAILED naming the first offending field (`where` when the input as a whole is wrong).
 */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  where: 'body' | 'query' | 'params',
): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.length > 0 ? issue.path.join('.') : (unknownKey(issue) ?? where);
  throw validationFailed(issue.message, field);
}

function unknownKey(issue: z.core.$ZodIssue): string | undefined {
  return issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
}
