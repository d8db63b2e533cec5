import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../../catalog/tenant-catalog.js';
import type { PurgeAction, PurgeStepKind } from './purge-plan.js';
import type { AuditPolicy, Retention } from './purge-policy.js';

/** The format tag of a report: a verifier refuses one it does not know. */
export const PURGE_REPORT_FORMAT = 'tenantry-purge-report/1';

/** One line of a purge report: a table (or schema, database, participant) in one placement. */
export interface PurgeReportStep {
  kind: PurgeStepKind;
  action: PurgeAction;
  cluster: string | null;
  database: string | null;
  schema: string | null;
  table: string | null;
  name: string | null;
  rowsBefore: number;
  rowsAfter: number;
  /** A schema or database dropped, or a table dropped with it. */
  dropped: boolean;
}

/** What a finished purge did, signed by the library's key and stored in `tenantry.purges`. */
export interface PurgeReport {
  format: typeof PURGE_REPORT_FORMAT;
  purgeId: string;
  tenant: { id: string; slug: string; tier: string };
  operator: string;
  startedAt: string;
  finishedAt: string;
  policy: {
    audit: AuditPolicy;
    retention: Omit<Retention, 'dueAt'> & { dueAt: string | null };
    retentionWaived: boolean;
  };
  steps: PurgeReportStep[];
}

/** A stored report, its signature and whether the signature holds. */
export interface VerifiedPurgeReport {
  report: PurgeReport;
  /** The stored text, exactly as signed. */
  text: string;
  signature: string;
  valid: boolean;
  /** Why it is not valid. */
  problem?: string;
}

const KEY_ID = 1;

/**
 * The HMAC-SHA256 key purge reports are signed with: 32 random bytes (node:crypto) kept in
 * `tenantry_private.purge_keys`, readable by the owner role only, made on first use. Why HMAC
 * and not a public-key signature: the verifier is the same library with the same database access
 * (`tenantry tenants purge-report --verify`), and node:crypto's HMAC needs no key management
 * beyond this row; a report edited by anyone without the key no longer verifies.
 */
async function signingKey(db: Queryable, id = KEY_ID): Promise<Buffer | undefined> {
  if (id === KEY_ID)
    await db.query('insert into tenantry_private.purge_keys (id, secret) values ($1, $2) on conflict (id) do nothing', [
      KEY_ID,
      randomBytes(32),
    ]);
  const { rows } = await db.query<{ secret: Buffer }>('select secret from tenantry_private.purge_keys where id = $1', [
    id,
  ]);
  return rows[0]?.secret;
}

/** Signs a report's exact text: `hmac-sha256:<key id>:<hex>`. */
export async function signPurgeReport(db: Queryable, text: string): Promise<string> {
  const key = (await signingKey(db))!;
  return `hmac-sha256:${KEY_ID}:${createHmac('sha256', key).update(text, 'utf8').digest('hex')}`;
}

/** Checks a stored report against its signature and its record's columns. */
export async function verifyPurgeReport(
  db: Queryable,
  row: { id: string; tenant_id: string; slug: string; report: string; signature: string },
): Promise<VerifiedPurgeReport> {
  let report: PurgeReport;
  try {
    report = JSON.parse(row.report) as PurgeReport;
  } catch {
    return {
      report: {} as PurgeReport,
      text: row.report,
      signature: row.signature,
      valid: false,
      problem: 'the report is not JSON',
    };
  }
  const answer = (problem?: string): VerifiedPurgeReport => ({
    report,
    text: row.report,
    signature: row.signature,
    valid: problem === undefined,
    ...(problem ? { problem } : {}),
  });
  const m = /^hmac-sha256:(\d{1,9}):([0-9a-f]{64})$/.exec(row.signature);
  if (!m) return answer('the signature is malformed');
  const key = await signingKey(db, Number(m[1]));
  if (!key) return answer('the signing key is unknown');
  const expected = createHmac('sha256', key).update(row.report, 'utf8').digest();
  if (!timingSafeEqual(expected, Buffer.from(m[2]!, 'hex'))) return answer('the signature does not match the report');
  if (report.format !== PURGE_REPORT_FORMAT) return answer('unknown report format');
  if (report.purgeId !== row.id || report.tenant?.id !== row.tenant_id || report.tenant?.slug !== row.slug)
    return answer('the report names another purge or tenant than its record');
  return answer();
}
