import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigurationError, InvalidArgumentError } from '../errors/tenantry-error.js';

/** Where `tenantry guard accept` writes reviewed exceptions by default (commit it). */
export const DEFAULT_ACCEPTED_FILE = 'tenantry.guard.json';

const FINGERPRINT = /^(?:[0-9a-f]{16}|unparsed-[0-9a-f]{16})$/;

const acceptedSchema = z.object({
  fingerprint: z.string().regex(FINGERPRINT, 'a libpg-query fingerprint (16 hex digits)'),
  reason: z.string().trim().min(1, 'a reason is required'),
  sample: z.string(),
  acceptedAt: z.string(),
});
const fileSchema = z.object({ accepted: z.array(acceptedSchema) });

/** One reviewed exception: a fingerprint `enforce` lets through, and why. */
export type AcceptedException = z.infer<typeof acceptedSchema>;
/** The content of `tenantry.guard.json`. */
export type AcceptedFile = z.infer<typeof fileSchema>;

/** Whether `text` looks like a fingerprint the guard produces. */
export function isFingerprint(text: string): boolean {
  return FINGERPRINT.test(text);
}

/** Validates a parsed accepted file; throws ConfigurationError naming the first problem. */
export function parseAcceptedFile(data: unknown, source = DEFAULT_ACCEPTED_FILE): AcceptedFile {
  const result = fileSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigurationError(`${source}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return result.data;
}

/** Reads and validates an accepted file; a missing file is an empty one. */
export async function readAcceptedFile(path = DEFAULT_ACCEPTED_FILE): Promise<AcceptedFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { accepted: [] };
    throw error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConfigurationError(`${path} is not valid JSON`, error);
  }
  return parseAcceptedFile(data, path);
}

/** Writes an accepted file (validated, sorted by fingerprint, stable for review in diffs). */
export async function writeAcceptedFile(path: string, file: AcceptedFile): Promise<void> {
  const valid = parseAcceptedFile(file, path);
  const accepted = [...valid.accepted].sort((a, b) => a.fingerprint.localeCompare(b.fingerprint));
  await writeFile(path, `${JSON.stringify({ accepted }, null, 2)}\n`);
}

/**
 * Adds a reviewed exception. Idempotent: a fingerprint already accepted is left as it is
 * (`added: false`). Refuses an empty reason or a malformed fingerprint.
 */
export function acceptFingerprint(
  file: AcceptedFile,
  entry: { fingerprint: string; reason: string; sample?: string; now?: Date },
): { file: AcceptedFile; added: boolean } {
  if (!isFingerprint(entry.fingerprint))
    throw new InvalidArgumentError(`Not a statement fingerprint: ${entry.fingerprint}`, 'fingerprint');
  if (!entry.reason?.trim()) throw new InvalidArgumentError('A reviewed exception needs a reason', 'reason');
  if (file.accepted.some((a) => a.fingerprint === entry.fingerprint)) return { file, added: false };
  const added: AcceptedException = {
    fingerprint: entry.fingerprint,
    reason: entry.reason.trim(),
    sample: entry.sample ?? '',
    acceptedAt: (entry.now ?? new Date()).toISOString(),
  };
  return { file: { accepted: [...file.accepted, added] }, added: true };
}
