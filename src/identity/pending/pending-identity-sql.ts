import { readFileSync } from 'node:fs';
import { quoteIdent } from '../../policy/identifiers.js';

// In the order they apply: each becomes a versioned identity migration of its own.
const PENDING = ['audit-ids.sql', 'visible-reasons.sql'];

/**
 * The identity changes waiting to become versioned migrations, with `:"app_role"` replaced by
 * the quoted app role: `audit-ids.sql` (per-tenant audit numbers: column `seq`, its counters, the
 * numbering trigger, column grants, `record_audit` answering the number) and
 * `visible-reasons.sql` (`tenantry.visible_length`, a check on staff grant reasons). `tenantry
 * install` appends them right after the identity objects; once they are migrations, this file
 * and its call in install-sql.ts go. Read when called, not when imported.
 */
export function pendingIdentitySql(appRole: string): string {
  return PENDING.map((name) =>
    readFileSync(new URL(`./${name}`, import.meta.url), 'utf8').replaceAll(':"app_role"', quoteIdent(appRole)),
  ).join('\n');
}
