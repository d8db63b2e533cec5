import { describe, expect, it } from 'vitest';
import { isGlobalTable } from '../../src/lint/global-tables.js';
import { tenantTableHasTenantId } from '../../src/lint/rules/tenant-table-has-tenant-id.js';
import { runRule } from './rule-tester.js';

describe('isGlobalTable', () => {
  it('matches bare names in any schema, qualified names exactly, and * patterns', () => {
    expect(isGlobalTable('plans', ['plans'])).toBe(true);
    expect(isGlobalTable('public.plans', ['plans'])).toBe(true);
    expect(isGlobalTable('app_private.users', ['app_private.users'])).toBe(true);
    expect(isGlobalTable('users', ['app_private.users'])).toBe(false);
    expect(isGlobalTable('public.users', ['app_private.users'])).toBe(false);
    expect(isGlobalTable('audit.events', ['audit.*'])).toBe(true);
    expect(isGlobalTable('Plans', ['plans'])).toBe(true);
    expect(isGlobalTable('plans_archive', ['plans'])).toBe(false);
  });
});

const missing = (table: string) => ({
  messageId: 'missingTenantColumn' as const,
  data: { table, columns: 'tenant_id or tenantId' },
});

runRule('tenant-table-has-tenant-id', tenantTableHasTenantId, {
  valid: [
    // Drizzle
    `pgTable('recordings', { tenantId: uuid('tenant_id').notNull(), id: uuid('id') });`,
    `pgTable('recordings', { tenant_id: uuid().notNull(), id: uuid() });`,
    `pgTable('recordings', { 'tenant_id': uuid(), id: uuid() });`,
    // the key is free, the database column is tenant_id
    `pgTable('recordings', { org: uuid('tenant_id').notNull().references(() => tenants.id), id: uuid('id') });`,
    `pgTable('recordings', (t) => ({ tenantId: t.uuid('tenant_id'), id: t.uuid() }));`,
    `pgTable('recordings', (t) => { return { tenantId: t.uuid(), id: t.uuid() }; });`,
    // columns the rule cannot see are not judged
    `pgTable('recordings', { ...tenantColumns, id: uuid('id') });`,
    `pgTable('recordings', columns);`,
    {
      code: `pgTable('plans', { id: text('id'), priceCents: integer('price_cents') });`,
      options: [{ globalTables: ['plans'] }],
    },
    {
      code: `pgTable('recordings', { accountId: uuid('account_id') });`,
      options: [{ columns: ['account_id', 'accountId'] }],
    },
    `table('recordings', { id: uuid() });`,
    `import { pgTable as table } from 'drizzle-orm/pg-core'; table('recordings', { tenantId: uuid() });`,
    {
      code: `const billing = pgSchema('billing'); billing.table('plans', { id: text() });`,
      options: [{ globalTables: ['billing.*'] }],
    },
    `const app = pgSchema('app'); app.table('recordings', { tenant_id: uuid(), id: uuid() });`,
    {
      code: `const app = pgSchema('app'); app.table('users', { id: uuid() });`,
      options: [{ globalTables: ['users'] }],
    },
    // not a schema made by pgSchema
    `other.table('recordings', { id: uuid() });`,
    // Kysely
    `interface RecordingTable { tenant_id: string; id: string } interface Database { recordings: RecordingTable }`,
    `export interface DB { 'public.members': PublicMembers } export interface PublicMembers { tenantId: Generated<string>; userId: string }`,
    `interface Database { recordings: { tenant_id: string; id: string } }`,
    `type Database = { recordings: Selectable<RecordingTable> }; interface RecordingTable { tenant_id: string }`,
    `interface Owned { tenant_id: string } interface RecordingTable extends Owned { id: string } interface Database { recordings: RecordingTable }`,
    `type RecordingTable = Owned & { id: string }; interface Owned { tenantId: string } interface Database { recordings: RecordingTable }`,
    // imported table types cannot be seen: not judged
    `import type { RecordingTable } from './tables'; interface Database { recordings: RecordingTable }`,
    `interface RecordingTable extends Imported { id: string } interface Database { recordings: RecordingTable }`,
    {
      code: `interface Database { 'app_private.users': { id: string }; plans: { id: string } }`,
      options: [{ globalTables: ['app_private.users', 'plans'] }],
    },
    // not a database interface
    `interface Recording { id: string; title: string }`,
    { code: `interface Database { recordings: { id: string } }`, options: [{ interfaces: ['Schema'] }] },
  ],
  invalid: [
    {
      code: `pgTable('recordings', { id: uuid('id'), title: text('title') });`,
      errors: [{ ...missing('recordings'), line: 1, column: 9 }],
    },
    {
      code: `pgTable('recordings', (t) => ({ id: t.uuid(), ownerId: t.uuid('owner_id') }));`,
      errors: [missing('recordings')],
    },
    { code: `pgTable(\`recordings\`, { id: uuid() });`, errors: [missing('recordings')] },
    { code: `pgTable(name, { id: uuid() });`, errors: [missing('(dynamic)')] },
    {
      code: `import { pgTable as table } from 'drizzle-orm/pg-core'; table('recordings', { id: uuid() });`,
      errors: [missing('recordings')],
    },
    {
      code: `const app = pgSchema('app'); export const users = app.table('users', { id: uuid() });`,
      errors: [missing('app.users')],
    },
    // tenant-looking names are not the tenant column
    { code: `pgTable('recordings', { tenant: uuid('tenant'), id: uuid() });`, errors: [missing('recordings')] },
    {
      code: `pgTable('users', { id: uuid() });`,
      options: [{ globalTables: ['app_private.users'] }],
      errors: [missing('users')],
    },
    {
      code: `schema.table('recordings', { id: uuid() });`,
      options: [{ tableFunctions: ['table'] }],
      errors: [missing('recordings')],
    },
    {
      code: `pgTable('recordings', { tenantId: uuid() });`,
      options: [{ columns: ['account_id'] }],
      errors: [{ messageId: 'missingTenantColumn', data: { table: 'recordings', columns: 'account_id' } }],
    },
    // Kysely
    {
      code: `interface RecordingTable { id: string; title: string } interface Database { recordings: RecordingTable }`,
      errors: [{ ...missing('recordings'), column: 77 }],
    },
    {
      code: `export interface DB { 'public.recordings': { id: string }; 'public.members': { tenant_id: string } }`,
      errors: [missing('public.recordings')],
    },
    {
      code: `type Database = { recordings: Selectable<RecordingTable> }; interface RecordingTable { id: string }`,
      errors: [missing('recordings')],
    },
    {
      code: `interface Base { id: string } interface RecordingTable extends Base { title: string } interface Database { recordings: RecordingTable }`,
      errors: [missing('recordings')],
    },
    {
      code: `type T = { id: string } & { title: string }; interface Database { a: T; b: T }`,
      errors: [missing('a'), missing('b')],
    },
    {
      code: `interface Schema { recordings: { id: string } }`,
      options: [{ interfaces: ['Schema'] }],
      errors: [missing('recordings')],
    },
  ],
});
