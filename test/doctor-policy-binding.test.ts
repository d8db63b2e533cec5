// Doctor reads each policy expression with PostgreSQL's parser and requires every permissive
// branch to bind the tenant column to the current tenant: `… OR is_public`, `tenant_id IS NOT
// NULL`, a second permissive policy that widens the first. The correct forms are not flagged.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAs } from '../src/context/tenant-context.js';
import { runDoctor, type DoctorReport } from '../src/policy/doctor.js';
import { tenantBinding } from '../src/policy/doctor/policy-binding.js';
import { loadSqlParser } from '../src/guard/sql-parser.js';
import type { TestDatabase } from './support/test-database.js';
import { applyFixes, createDoctorTestDatabase, findingOf } from './support/doctor-findings.js';

const CURRENT = '( SELECT tenantry.current_tenant_id() AS current_tenant_id)';

describe('tenantBinding (the expression analysis alone)', () => {
  beforeAll(() => loadSqlParser());

  it.each([
    `(tenant_id = ${CURRENT})`,
    `(tenant_id = tenantry.current_tenant_id())`,
    `(${CURRENT} = tenant_id)`,
    `(tenant_id = ( SELECT tenantry.home_tenant_id() AS home_tenant_id))`,
    `((tenant_id)::uuid = (${CURRENT})::uuid)`,
    `((tenant_id = ${CURRENT}) AND (body <> ''::text))`,
    `(((tenant_id = ${CURRENT}) AND is_public) OR ((tenant_id = ${CURRENT}) AND (owner = CURRENT_USER)))`,
    `(tenant_id IN ( SELECT tenantry.current_tenant_id() AS current_tenant_id))`,
    `(notes.tenant_id = ${CURRENT})`,
    `(tenant_id = (current_setting('tenantry.tenant_id'::text, true))::uuid)`,
  ])('binds: %s', (expr) => {
    expect(tenantBinding(expr, 'tenant_id')).toEqual({ parsed: true, bound: true });
  });

  it.each([
    `((tenant_id = ${CURRENT}) OR is_public)`,
    `(tenant_id IS NOT NULL)`,
    `(tenant_id = tenant_id)`,
    `(NOT (tenant_id <> ${CURRENT}))`,
    `(tenant_id <> ${CURRENT})`,
    `(tenant_id = '00000000-0000-0000-0000-000000000001'::uuid)`,
    `(COALESCE(tenant_id, ${CURRENT}) = ${CURRENT})`,
    `(tenant_id = public.current_tenant_id())`,
    `(tenant_id = (current_setting('app.other'::text))::uuid)`,
    `(other_id = ${CURRENT})`,
    `(tenant_id IN ( SELECT m.tenant_id FROM members m))`,
    `(EXISTS ( SELECT 1 FROM members m WHERE (m.tenant_id = ${CURRENT})))`,
  ])('does not bind: %s', (expr) => {
    expect(tenantBinding(expr, 'tenant_id')).toEqual({ parsed: true, bound: false });
  });

  it('claims nothing about an expression it cannot parse', () => {
    expect(tenantBinding('(tenant_id = ', 'tenant_id')).toEqual({ parsed: false, bound: false });
  });
});

function objectsOf(report: DoctorReport, code: string): string[] {
  return report.findings
    .filter((f) => f.code === code)
    .map((f) => f.object)
    .sort();
}

describe('doctor on policies that name the tenant column without binding it', () => {
  let db: TestDatabase;
  const tables = [
    'or_public',
    'not_null',
    'widened',
    'widened_ok',
    'restricted',
    'weak_fence',
    'bound_arms',
    'for_staff',
    'global_feed',
  ];
  beforeAll(async () => {
    db = await createDoctorTestDatabase();
    await db.owner.query(
      tables
        .map(
          (t) =>
            `create table ${t} (tenant_id uuid not null, id uuid not null default gen_random_uuid(), is_public boolean not null default false,
                                body text, primary key (tenant_id, id));
             ${t === 'global_feed' ? '' : `select tenantry.register_tenant_table('${t}');`}`,
        )
        .join('\n'),
    );
    await db.owner.query(`select tenantry.register_global_table('global_feed')`);
    await db.admin.query(`
      -- the single-policy form the peer linter missed
      drop policy tenantry_isolation on or_public;
      create policy shared on or_public
        using (tenant_id = (select tenantry.current_tenant_id()) or is_public)
        with check (tenant_id = (select tenantry.current_tenant_id()));
      drop policy tenantry_isolation on not_null;
      create policy any_tenant on not_null using (tenant_id is not null) with check (tenant_id is not null);
      -- a second permissive policy that widens Tenantry's isolation policy (for reads only)
      create policy peek on widened for select using (tenant_id is not null and is_public);
      -- the close variants that are correct
      create policy mine_public on widened_ok for select using (tenant_id = (select tenantry.current_tenant_id()) and is_public);
      create policy loose on restricted for select using (tenant_id is not null);
      create policy fence on restricted as restrictive using (tenant_id = (select tenantry.current_tenant_id()));
      create policy loose on weak_fence for select using (tenant_id is not null);
      create policy fence on weak_fence as restrictive using (tenant_id is not null);
      drop policy tenantry_isolation on bound_arms;
      create policy arms on bound_arms
        using ((tenant_id = (select tenantry.current_tenant_id()) and is_public) or (tenant_id = (select tenantry.current_tenant_id()) and body is not null))
        with check (tenant_id = (select tenantry.current_tenant_id()));
      create policy staff on for_staff for select to ${db.ownerRole} using (tenant_id is not null);
      create policy public_rows on global_feed for select using (tenant_id is not null or is_public);
    `);
  });
  afterAll(() => db?.drop());

  it('flags each permissive branch that does not bind the tenant, for reads and writes, and nothing else', async () => {
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_TENANT_NOT_BOUND')).toEqual([
      'any_tenant on public.not_null', // USING
      'any_tenant on public.not_null', // WITH CHECK
      'loose on public.weak_fence',
      'peek on public.widened',
      'shared on public.or_public',
    ]);
    const shared = findingOf(report, 'POLICY_TENANT_NOT_BOUND', 'shared on public.or_public');
    expect(shared.severity).toBe('error');
    expect(shared.message).toContain('USING expression');
    expect(shared.fix).toBe(
      'ALTER POLICY shared ON public.or_public USING ((((tenant_id = ( SELECT tenantry.current_tenant_id() AS current_tenant_id)) OR is_public)) AND tenant_id = (SELECT tenantry.current_tenant_id()));',
    );
    expect(
      report.findings.filter((f) => /widened_ok|restricted|bound_arms|for_staff|global_feed/.test(f.object)),
    ).toEqual([]);
  });

  it('what it flags is real: tenant B reads tenant A’s row through the OR arm; after the fix it reads nothing and A’s row is intact', async () => {
    const [a, b] = [randomUUID(), randomUUID()];
    await db.admin.query(`insert into or_public (tenant_id, is_public, body) values ($1, true, 'a-public')`, [a]);
    const pool = db.appPool();
    expect((await runAs(b, () => pool.query('select body from or_public'))).rows).toEqual([{ body: 'a-public' }]);
    await applyFixes(db, await runDoctor(db.adminUrl), ['POLICY_TENANT_NOT_BOUND']);
    expect((await runAs(b, () => pool.query('select body from or_public'))).rows).toEqual([]);
    expect((await runAs(b, () => pool.query(`update or_public set body = 'b-was-here'`))).rowCount).toBe(0);
    expect((await runAs(a, () => pool.query('select body from or_public'))).rows).toEqual([{ body: 'a-public' }]);
    const report = await runDoctor(db.adminUrl);
    expect(objectsOf(report, 'POLICY_TENANT_NOT_BOUND')).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
