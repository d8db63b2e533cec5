// `tenantry doctor --citus` on a real coordinator: a tenant table registered the plain-PostgreSQL
// way (InitPlan policy) with a trigger is reported with exactly what Citus would refuse; the
// findings' fixes make create_distributed_table succeed; Citus's own views are not reported.
// Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { install } from '../../src/policy/installer.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { CITUS_SECRET, CITUS_URL } from './citus-support.js';

const T = 'citus_doctor_notes';

describe.skipIf(!CITUS_URL)(
  CITUS_URL ? 'doctor --citus on Citus' : 'doctor --citus on Citus (skipped: CITUS_URL is not set)',
  () => {
    let admin: pg.Client;
    const mine = (findings: { code: string; object: string }[]) =>
      findings.filter((f) => f.object.includes(T) || f.object.includes('citus_')).map((f) => `${f.code} ${f.object}`);

    beforeAll(async () => {
      await install(CITUS_URL!, { citus: true, contextSecret: CITUS_SECRET });
      admin = new pg.Client({ connectionString: CITUS_URL });
      await admin.connect();
      await admin.query(`drop table if exists ${T}`);
      await admin.query(
        `create table ${T} (tenant_id uuid not null, id bigint not null, body text, primary key (tenant_id, id))`,
      );
      await admin
        .query(`create function citus_doctor_touch() returns trigger language plpgsql as $$ begin return new; end $$`)
        .catch(() => undefined);
      await admin.query(
        `create trigger touch before update on ${T} for each row execute function citus_doctor_touch()`,
      );
      await admin.query(`select tenantry.register_tenant_table('${T}')`);
    });

    afterAll(async () => {
      await admin?.query(`drop table if exists ${T}`);
      await admin?.end();
    });

    it('reports the sub-select policy and the trigger Citus refuses, and not Citus views', async () => {
      const report = await runDoctor(CITUS_URL!, { citus: true });
      expect(mine(report.findings).sort()).toEqual([
        `CITUS_POLICY_SUBQUERY tenantry_isolation on public.${T}`,
        `CITUS_TRIGGER_ON_TENANT_TABLE touch on public.${T}`,
      ]);
      expect(report.findings.some((f) => f.code === 'VIEW_NOT_SECURITY_INVOKER')).toBe(false);
      expect(report.findings.some((f) => f.code === 'POLICY_PER_ROW_CONTEXT')).toBe(false);
      // what Citus says without the fixes
      const refused = await admin.query(`select create_distributed_table('${T}', 'tenant_id')`).then(
        () => 'distributed',
        (e: Error) => e.message,
      );
      expect(refused).toMatch(/trigger|policy|Subqueries/i);
      // the findings' fixes, in order, then Citus accepts the table
      for (const f of report.findings.filter((x) => x.object.includes(T)).reverse()) await admin.query(f.fix);
      const { rows } = await admin.query(
        `select partmethod from pg_dist_partition where logicalrelid = '${T}'::regclass`,
      );
      expect(rows).toEqual([{ partmethod: 'h' }]);
      const after = await runDoctor(CITUS_URL!, { citus: true });
      expect(mine(after.findings)).toEqual([]);
    });
  },
);
