import { restrictedEscapeHatch } from '../../src/lint/rules/restricted-escape-hatch.js';
import { runRule } from './rule-tester.js';

runRule('restricted-escape-hatch', restrictedEscapeHatch, {
  valid: [
    `import { runAs } from 'tenantry'; await runAs(tenantId, () => pool.query('select 1'));`,
    // named, not called: only calls are judged
    `import { runWithoutTenant } from 'tenantry'; export { runWithoutTenant };`,
    `runAsSystemLike(() => 1);`,
    {
      code: `import { runWithoutTenant } from 'tenantry'; runWithoutTenant(() => catalog.list());`,
      filename: 'src/admin/catalog-job.ts',
      options: [{ allow: ['src/admin/**'] }],
    },
    { code: `asStaff(user, () => 1);`, filename: 'app/staff/console.ts', options: [{ allow: ['app/staff/*.ts'] }] },
    // a custom list replaces the default names
    { code: `runWithoutTenant(() => 1);`, options: [{ names: ['bypassTenant'] }] },
  ],
  invalid: [
    {
      code: `import { runWithoutTenant } from 'tenantry'; runWithoutTenant(() => pool.query('select 1'));`,
      errors: [{ messageId: 'escapeHatch', data: { name: 'runWithoutTenant' } }],
    },
    { code: `runAsSystem(async () => {});`, errors: [{ messageId: 'escapeHatch', data: { name: 'runAsSystem' } }] },
    {
      code: `tenantry.withStaffAccess(staff, () => 1);`,
      errors: [{ messageId: 'escapeHatch', data: { name: 'withStaffAccess' } }],
    },
    { code: `ctx['asStaff'](user);`, errors: [{ messageId: 'escapeHatch', data: { name: 'asStaff' } }] },
    {
      code: `import { runWithoutTenant as leave } from 'tenantry'; leave(() => 1);`,
      errors: [{ messageId: 'escapeHatch', data: { name: 'runWithoutTenant' } }],
    },
    {
      code: `bypassTenant(() => 1);`,
      options: [{ names: ['bypassTenant'] }],
      errors: [{ messageId: 'escapeHatch', data: { name: 'bypassTenant' } }],
    },
    {
      code: `runAsSystem(() => 1);`,
      filename: 'app/recordings/routes.ts',
      options: [{ allow: ['src/admin/**'] }],
      errors: [{ messageId: 'escapeHatch' }],
    },
  ],
});
