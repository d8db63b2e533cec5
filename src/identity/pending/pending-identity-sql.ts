import { readFileSync } from 'node:fs';
import { quoteIdent } from '../../policy/identifiers.js';

// In the order they apply: each becomes a versioned identity migration of its own.
const PENDING = ['audit-ids.sql', 'visible-reasons.sql'];

/**
 * The identity changes waiting to become versioned migrations, with `:TENANTRY_APP_ROLE` (the
 * placeholder of the library's versioned migrations) replaced by the quoted app role:
 * `audit-ids.sql` (per-tenant audit numbers: column `seq`, its counters, the numbering trigger,
 * column grants, `record_audit` answering the number) and `visible-reasons.sql`
 * (`tenantry.visible_length`, a check on staff grant reasons). `tenantry install` appends them
 * right after the identity objects; once they are migrations, this file and its call in
 * install-sql.ts go. Read when called, not when imported; the build copies the folder's `.sql`
 * next to the compiled code (package.json `build`).
 */
export function pendingIdentitySql(appRole: string): string {
  return PENDING.map((name) =>
    readFileSync(new URL(`./${name}`, import.meta.url), 'utf8').replaceAll(':TENANTRY_APP_ROLE', quoteIdent(appRole)),
  ).join('\n');
}
