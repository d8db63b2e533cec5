import { readFileSync } from 'node:fs';
import { quoteIdent } from '../../policy/identifiers.js';

/**
 * The per-tenant audit numbering of `audit-ids.sql` (column `seq`, its counter table, the
 * numbering trigger, the app role's column grants, `record_audit` answering the number), with
 * `:"app_role"` replaced by the quoted app role. Pending: `tenantry install` appends it right after
 * the identity objects until it becomes a versioned identity migration of its own (then this
 * file and its call in install-sql.ts go). Read when called, not when imported.
 */
export function auditIdsSql(appRole: string): string {
  const sql = readFileSync(new URL('./audit-ids.sql', import.meta.url), 'utf8');
  return sql.replaceAll(':"app_role"', quoteIdent(appRole));
}
