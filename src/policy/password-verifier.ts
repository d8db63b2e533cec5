import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';

/**
 * Whether `password` is the one a role's stored verifier (`pg_authid.rolpassword`) was made
 * from: SCRAM-SHA-256 (RFC 5802/7677, PostgreSQL's default) or the legacy md5 form. Undefined
 * when it cannot tell: another format, or a non-ASCII password (PostgreSQL runs SASLprep over
 * those first, which this does not reproduce). Hand-written because neither pg nor a well-kept
 * library exposes the check; it is the verifier computation of PostgreSQL's scram-common.c,
 * used so that `tenantry install` can say whether a kept password is the one it was given
 * without trying to log in (which a trust or peer rule in pg_hba.conf would let through anyway).
 */
export function passwordMatchesVerifier(verifier: string, role: string, password: string): boolean | undefined {
  const scram = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/.exec(verifier);
  if (scram) {
    if (!/^[\x20-\x7e]*$/.test(password)) return undefined;
    const [, iterations, salt, storedKey] = scram;
    const salted = pbkdf2Sync(password, Buffer.from(salt!, 'base64'), Number(iterations), 32, 'sha256');
    const clientKey = createHmac('sha256', salted).update('Client Key').digest();
    const computed = createHash('sha256').update(clientKey).digest();
    const expected = Buffer.from(storedKey!, 'base64');
    return expected.length === computed.length && timingSafeEqual(expected, computed);
  }
  const md5 = /^md5([0-9a-f]{32})$/.exec(verifier);
  if (md5) {
    const computed = createHash('md5')
      .update(password + role)
      .digest();
    return timingSafeEqual(computed, Buffer.from(md5[1]!, 'hex'));
  }
  return undefined;
}
