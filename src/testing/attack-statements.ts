import { SqlState } from '../errors/sqlstate.js';
import { errorCode } from './attempt-result.js';
import type { SqlResult } from './isolation-context.js';
import { keyPredicate, keyValues, type ResolvedTable, type RowKey } from './table-spec.js';

/** A statement of an attack and what refusal means for it. */
export interface AttackStatement {
  label: string;
  sql: string;
  values: unknown[];
  /**
   * `rows`: a read that may return only the actor's rows. `writes`: a write aimed at rows outside
   * the actor's tenant, so it must change none. `policy`: the row policy must refuse it (42501).
   * Writes carry no RETURNING: RETURNING adds the SELECT policies as checks on the new row, which
   * would refuse some attacks the application's own statements would get through.
   */
  refusal: 'rows' | 'writes' | 'policy';
}

// An expression, not the column: the pool's result check looks at columns read from a table,
// and the kit wants to see a leaked row, not the pool's error about it.
export const TENANT_OUT = 'tenantry_tenant';
const COUNT_OUT = 'tenantry_rows';

/** The tenant column as text, named TENANT_OUT: what the read attacks return. */
export function tenantOut(table: ResolvedTable): string {
  return `${table.tenantSql}::text as ${TENANT_OUT}`;
}

/**
 * Reads, updates or deletes aimed at `keys` (rows outside the actor's tenant): by id, and with
 * `withTenant` also by id and tenant A's id (an app trusting a tenant id from input), and for
 * updates, taking the row into the actor's tenant.
 */
export function keyedStatements(
  table: ResolvedTable,
  kind: 'read' | 'update' | 'delete',
  keys: readonly RowKey[],
  { tenantA: A, withTenant, actorTenant }: { tenantA: string; withTenant: boolean; actorTenant: string | undefined },
): AttackStatement[] {
  const tt = tenantOut(table);
  const out: AttackStatement[] = [];
  keys.forEach((key, n) => {
    const values = keyValues(table, key);
    const k = table.idColumns.length;
    const forms: Array<[string, string, unknown[]]> = [];
    if (kind === 'read') {
      forms.push([`select by id`, `select ${tt} from ${table.sql} where ${keyPredicate(table, 1)}`, values]);
      if (withTenant)
        forms.push([
          `select by id and A's tenant id`,
          `select ${tt} from ${table.sql} where ${keyPredicate(table, 1)} and ${table.tenantSql} = $${k + 1}`,
          [...values, A],
        ]);
    } else if (kind === 'update') {
      const set = `update ${table.sql} set ${table.updateSql} = $1`;
      forms.push([`update by id`, `${set} where ${keyPredicate(table, 2)}`, [table.spec.update.value, ...values]]);
      if (withTenant) {
        forms.push([
          `update by id and A's tenant id`,
          `${set} where ${keyPredicate(table, 2)} and ${table.tenantSql} = $${k + 2}`,
          [table.spec.update.value, ...values, A],
        ]);
        if (actorTenant) {
          forms.push([
            `update the tenant column to B`,
            `update ${table.sql} set ${table.tenantSql} = $1 where ${keyPredicate(table, 2)}`,
            [actorTenant, ...values],
          ]);
        }
      }
    } else {
      forms.push([`delete by id`, `delete from ${table.sql} where ${keyPredicate(table, 1)}`, values]);
      if (withTenant)
        forms.push([
          `delete by id and A's tenant id`,
          `delete from ${table.sql} where ${keyPredicate(table, 1)} and ${table.tenantSql} = $${k + 1}`,
          [...values, A],
        ]);
    }
    for (const [label, sql, vals] of forms)
      out.push({ label: `${label} (row ${n + 1})`, sql, values: vals, refusal: kind === 'read' ? 'rows' : 'writes' });
  });
  return out;
}

/** Everything, grouped by tenant; and counted where the tenant is A's. */
export function listStatements(table: ResolvedTable, A: string): AttackStatement[] {
  const tt = tenantOut(table);
  return [
    {
      label: 'select all, grouped by tenant',
      sql: `select ${tt}, count(*)::int as ${COUNT_OUT} from ${table.sql} group by 1`,
      values: [],
      refusal: 'rows',
    },
    {
      label: "count where tenant is A's",
      sql: `select ${tt}, count(*)::int as ${COUNT_OUT} from ${table.sql} where ${table.tenantSql} = $1 group by 1`,
      values: [A],
      refusal: 'rows',
    },
  ];
}

/** Refused, or the words for how the statement got through. */
export function judgeStatement(
  s: AttackStatement,
  result: SqlResult | undefined,
  failure: unknown,
  actorTenant: string | undefined,
): string | undefined {
  if (failure !== undefined) {
    const code = errorCode(failure);
    // 42501: the row policy or a missing grant; TENANT_SCOPE_MISSING: the app refused to run it
    if (code === SqlState.insufficientPrivilege || code === 'TENANT_SCOPE_MISSING') return undefined;
    if (code === 'CROSS_TENANT_ROW')
      return `${s.label}: PostgreSQL returned another tenant's row (the pool's result check stopped it)`;
    const what = code ?? (failure instanceof Error ? failure.name : 'an error');
    if (s.refusal === 'policy') return `${s.label}: not refused by the row policy (it failed later, with ${what})`;
    return `${s.label}: failed with ${what} instead of being refused, so it proves nothing (check the table spec: ${(failure as Error).message})`;
  }
  const rows = result?.rows ?? [];
  if (s.refusal === 'policy')
    return `${s.label}: succeeded (${result?.rowCount ?? 0} row(s)) instead of being refused with 42501`;
  if (s.refusal === 'writes')
    return (result?.rowCount ?? 0) > 0 ? `${s.label}: changed ${result!.rowCount} row(s) of another tenant` : undefined;
  let foreign = 0;
  for (const row of rows) {
    if (actorTenant !== undefined && row[TENANT_OUT] === actorTenant) continue;
    foreign += typeof row[COUNT_OUT] === 'number' ? row[COUNT_OUT] : 1;
  }
  return foreign > 0
    ? `${s.label}: reached ${foreign} row(s) ${actorTenant ? 'of another tenant' : 'with no tenant in context'}`
    : undefined;
}
