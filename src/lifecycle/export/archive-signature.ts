import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import { ArchiveError } from './archive-error.js';

/** The name of the signature's entry: the archive's second, right after the manifest. */
export const SIGNATURE_ENTRY = 'manifest.sig';

/** How an import treated the archive's signature. */
export type ArchiveSignatureCheck = 'verified' | 'unsigned' | 'unverifiable';

const KEY_ID = 1;
const FORMAT = /^hmac-sha256:(\d{1,9}):([0-9a-f]{16}):([0-9a-f]{64})$/;

/**
 * The deployment's archive key: 32 random bytes (node:crypto) in `tenantry_private.archive_keys`,
 * owner role only, made on first use. HMAC rather than a public-key signature for the reason the
 * purge reports give (purge-report.ts): the verifier is the same library with the same database.
 */
async function archiveKey(db: Queryable, id = KEY_ID, create = true): Promise<Buffer | undefined> {
  if (create && id === KEY_ID)
    await db.query(
      'insert into tenantry_private.archive_keys (id, secret) values ($1, $2) on conflict (id) do nothing',
      [KEY_ID, randomBytes(32)],
    );
  const { rows } = await db.query<{ secret: Buffer }>(
    'select secret from tenantry_private.archive_keys where id = $1',
    [id],
  );
  return rows[0]?.secret;
}

// names the key without revealing it: tells "signed by another deployment" from "tampered"
const fingerprint = (key: Buffer) =>
  createHash('sha256').update('tenantry-archive-key').update(key).digest('hex').slice(0, 16);

/** Signs a manifest's exact bytes: `hmac-sha256:<key id>:<key fingerprint>:<hex>`. */
export async function signArchiveManifest(db: Queryable, manifest: Buffer): Promise<string> {
  const key = (await archiveKey(db))!;
  return `hmac-sha256:${KEY_ID}:${fingerprint(key)}:${createHmac('sha256', key).update(manifest).digest('hex')}`;
}

/**
 * Checks a manifest's signature with this deployment's key. Refused: no signature
 * (ARCHIVE_UNSIGNED), one that does not match the manifest (ARCHIVE_SIGNATURE_INVALID: the
 * manifest, and so any table it vouches for, was edited), one made with a key this deployment
 * does not hold (ARCHIVE_SIGNATURE_INVALID, `details.reason: 'unknown-key'`). With
 * `allowUnsigned` the first and the last are accepted (`unsigned`, `unverifiable`): an archive
 * from before signing, or from another deployment, that the operator vouches for. A signature
 * that does not match a key held here is never accepted.
 */
export async function verifyArchiveManifest(
  db: Queryable,
  manifest: Buffer,
  signature: string | undefined,
  allowUnsigned = false,
): Promise<ArchiveSignatureCheck> {
  if (signature === undefined) {
    if (allowUnsigned) return 'unsigned';
    throw new ArchiveError(
      'ARCHIVE_UNSIGNED',
      'The archive is not signed: import it only if you trust where it came from (--allow-unsigned)',
    );
  }
  const m = FORMAT.exec(signature.trim());
  if (!m)
    throw new ArchiveError('ARCHIVE_SIGNATURE_INVALID', 'The archive signature is malformed', {
      details: { reason: 'malformed' },
    });
  const key = await archiveKey(db, Number(m[1]), false);
  if (!key || fingerprint(key) !== m[2]) {
    if (allowUnsigned) return 'unverifiable';
    throw new ArchiveError(
      'ARCHIVE_SIGNATURE_INVALID',
      'The archive was signed by another deployment (its key is not held here): import it only if you trust where it came from (--allow-unsigned)',
      { details: { reason: 'unknown-key' } },
    );
  }
  const expected = createHmac('sha256', key).update(manifest).digest();
  if (!timingSafeEqual(expected, Buffer.from(m[3]!, 'hex')))
    throw new ArchiveError(
      'ARCHIVE_SIGNATURE_INVALID',
      'The archive signature does not match its manifest: it was altered',
      {
        details: { reason: 'mismatch' },
      },
    );
  return 'verified';
}
