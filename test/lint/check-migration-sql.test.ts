import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { checkMigrationFiles, checkMigrationSql, checkMigrationSqlSync, loadSqlParser } from '../../src/lint/index.js';

const MIGRATIONS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../app/migrations');

const tables = async (sql: string, options?: Parameters<typeof checkMigrationSql>[1]) =>
  (await checkMigrationSql(sql, options)).map((f) => f.table);

describe('checkMigrationSql', () => {
  it('reports CREATE TABLE without tenant_id, at the table name', async () => {
    const findings = await checkMigrationSql(
      '-- notes\ncreate table recordings (\n  id uuid primary key,\n  title text\n);\n',
    );
    expect(findings).toEqual([
      expect.objectContaining({ code: 'MISSING_TENANT_COLUMN', table: 'recordings', line: 2, column: 14 }),
    ]);
    expect(findings[0]!.message).toContain('register_global_table');
  });

  it('passes tables with tenant_id and keeps schema-qualified names', async () => {
    expect(
      await tables(
        'CREATE TABLE public.members (tenant_id uuid NOT NULL, user_id uuid, PRIMARY KEY (tenant_id, user_id));',
      ),
    ).toEqual([]);
    expect(await tables('CREATE TABLE IF NOT EXISTS audit.events (id bigint);')).toEqual(['audit.events']);
    expect(await tables('CREATE UNLOGGED TABLE "Quoted" (id int);')).toEqual(['Quoted']);
  });

  it('skips global tables: the option and register_global_table in the same file', async () => {
    expect(await tables('create table plans (id text);', { globalTables: ['plans'] })).toEqual([]);
    expect(await tables('create table billing.plans (id text);', { globalTables: ['billing.*'] })).toEqual([]);
    expect(
      await tables("create table public.plans (id text); select tenantry.register_global_table('public.plans');"),
    ).toEqual([]);
    expect(await tables("create table plans (id text); select tenantry.register_tenant_table('plans');")).toEqual([
      'plans',
    ]);
    expect(await tables('create table users (id int);', { globalTables: ['app_private.users'] })).toEqual(['users']);
  });

  it('does not judge tables whose columns come from elsewhere, nor temporary tables', async () => {
    const sql = `
      create temp table scratch (id int);
      create table p1 partition of parent for values in (1);
      create table child (id int) inherits (parent);
      create table copy (like recordings including all);
      create table typed of some_type;`;
    expect(await tables(sql)).toEqual([]);
  });

  it('counts a column added by ALTER TABLE in the same file', async () => {
    expect(await tables('create table t (id int); alter table public.t add column tenant_id uuid not null;')).toEqual(
      [],
    );
    expect(await tables('create table t (id int); alter table t add column owner uuid;')).toEqual(['t']);
  });

  it('judges CREATE TABLE AS by its column names', async () => {
    expect(await tables('create table s as select tenant_id, count(*) as n from recordings group by 1;')).toEqual([]);
    expect(await tables('create table s as select owner_id, count(*) as n from recordings group by 1;')).toEqual(['s']);
    expect(await tables('create table s (tenant_id, n) as select a, b from x;')).toEqual([]);
    expect(await tables('create table s as select * from recordings;')).toEqual([]);
  });

  it('honours custom column names', async () => {
    expect(await tables('create table t (account_id uuid);', { columns: ['account_id'] })).toEqual([]);
    expect(await tables('create table t (tenant_id uuid);', { columns: ['account_id'] })).toEqual(['t']);
  });

  it('tolerates psql variables and meta-commands, and reports positions after multi-byte text', async () => {
    const sql =
      '\\set ON_ERROR_STOP on\n-- café ☕\nGRANT USAGE ON SCHEMA app TO :"app_role";\nselect :\'x\';\ncreate table é (id int);';
    expect(await checkMigrationSql(sql)).toEqual([expect.objectContaining({ table: 'é', line: 5, column: 14 })]);
  });

  it('reports SQL that does not parse instead of passing it', async () => {
    const findings = await checkMigrationSql('create table t (id int,);');
    expect(findings).toEqual([expect.objectContaining({ code: 'SQL_PARSE_ERROR', line: 1 })]);
  });

  it('has a synchronous form once the parser is loaded', async () => {
    await loadSqlParser();
    expect(checkMigrationSqlSync('create table t (id int);').map((f) => f.table)).toEqual(['t']);
  });

  it("passes the reference server's migrations, its app_private tables being global", async () => {
    const files = (await readdir(MIGRATIONS)).filter((f) => f.endsWith('.sql')).map((f) => path.join(MIGRATIONS, f));
    expect(files.length).toBeGreaterThan(0);
    expect(
      await checkMigrationFiles(files, {
        globalTables: [
          'app_private.users',
          'app_private.outbox',
          'app_private.address_confirmations',
          'app_private.console_audit',
        ],
      }),
    ).toEqual([]);
    const unlisted = await checkMigrationFiles(files);
    expect(unlisted.map((f) => [path.basename(f.file), f.table])).toEqual([
      ['001_identity.sql', 'app_private.users'],
      ['007_invitation_ownership.sql', 'app_private.outbox'],
      ['007_invitation_ownership.sql', 'app_private.address_confirmations'],
      ['011_console_audit.sql', 'app_private.console_audit'],
    ]);
  });
});
