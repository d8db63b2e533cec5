import pg from 'pg';
import { ContextSigner } from '../../src/data/context-signer.js';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';
import { RLS_SQL } from './variants.js';

/** One pass/fail check with the evidence behind it. */
export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

export interface ExplainEvidence {
  pointPlan: string;
  scanPlan: string;
  checks: Check[];
}

/**
 * EXPLAIN ANALYZE of variant (b)'s query, run as the app role with the signed context set in
 * the same transaction, plus a count of how many times `tenantry.current_tenant_id()` ran
 * for a statement reading every row of one tenant (track_functions, for this role only).
 */
export async function explainSigned(opts: {
  adminUrl: string;
  appUrl: string;
  appRole: string;
  database: string;
  contextSecret: string;
  tenant: string;
  id: number;
  rowsPerTenant: number;
}): Promise<ExplainEvidence> {
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  await admin.connect();
  const trackSql = (verb: string) => `alter role "${opts.appRole}" in database "${opts.database}" ${verb}`;
  // 'all': since core 006 the signed check is a SQL function, which 'pl' does not count
  await admin.query(trackSql(`set track_functions = 'all'`));
  const app = new pg.Client({ connectionString: opts.appUrl });
  await app.connect();
  try {
    const value = new ContextSigner(opts.contextSecret).encode(opts.tenant);
    await app.query('begin');
    await app.query(`select set_config('${CONTEXT_SETTING}', $1, true)`, [value]);
    const plan = async (sql: string, values: unknown[] = []) =>
      (await app.query(`explain (analyze, verbose, buffers) ${sql}`, values)).rows
        .map((r) => r['QUERY PLAN'] as string)
        .join('\n');
    const pointPlan = await plan(RLS_SQL, [opts.id]);
    const calls = async () =>
      Number(
        (
          await app.query(
            `select coalesce(pg_stat_get_xact_function_calls('tenantry.current_tenant_id()'::regprocedure), 0) as n`,
          )
        ).rows[0].n,
      );
    const before = await calls();
    const counted = Number((await app.query('select count(*) as n from items')).rows[0].n);
    const after = await calls();
    const scanPlan = await plan('select count(*) from items');
    await app.query('commit');

    const initPlanLoops = (text: string) => {
      const lines = text.split('\n');
      const at = lines.findIndex((l) => /^\s*InitPlan\b/.test(l));
      return at < 0 ? undefined : /loops=(\d+)/.exec(lines.slice(at, at + 2).join(' '))?.[1];
    };
    const indexLine = pointPlan.split('\n').find((l) => /Index (Only )?Scan using \S+ on (\S+\.)?items/.test(l));
    const indexCond = pointPlan.split('\n').find((l) => /Index Cond:/.test(l)) ?? '';
    const checks: Check[] = [
      {
        name: 'point select uses an index on items',
        pass: indexLine !== undefined,
        detail: indexLine?.trim() ?? 'no Index Scan / Index Only Scan on items',
      },
      {
        name: 'index condition carries both tenant_id (policy) and id (query)',
        pass: /tenant_id/.test(indexCond) && /\bid\b/.test(indexCond.replace(/tenant_id/g, '')),
        detail: indexCond.trim() || 'no Index Cond',
      },
      {
        name: 'policy function is an InitPlan evaluated once (loops=1)',
        pass: initPlanLoops(pointPlan) === '1',
        detail: `InitPlan ${initPlanLoops(pointPlan) === undefined ? 'absent' : `loops=${initPlanLoops(pointPlan)}`}`,
      },
      {
        name: `current_tenant_id() called once for a statement reading ${opts.rowsPerTenant} rows`,
        pass: counted === opts.rowsPerTenant && after - before === 1,
        detail: `count(*) = ${counted}, calls of tenantry.current_tenant_id() in the statement = ${after - before}`,
      },
    ];
    return { pointPlan, scanPlan, checks };
  } finally {
    await app.end();
    await admin.query(trackSql('reset track_functions')).catch(() => undefined);
    await admin.end();
  }
}
