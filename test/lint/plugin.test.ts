import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint, type Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { plugin, rules, sqlMigrationsConfig } from '../../src/lint/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RULES = [
  'tenant-table-has-tenant-id',
  'no-raw-pool',
  'no-sql-concat',
  'restricted-escape-hatch',
  'job-needs-tenant',
];

// one flat-config object; the plugin's configs are typed by @typescript-eslint/utils, a structural twin
type Config = Linter.Config;

function eslintWith(config: Config[]): ESLint {
  return new ESLint({ cwd: ROOT, overrideConfigFile: true, overrideConfig: config });
}

describe('plugin', () => {
  it('exports the five rules, each with docs and a schema, all on in configs.recommended', () => {
    expect(Object.keys(rules).sort()).toEqual([...RULES].sort());
    expect(plugin.rules).toBe(rules);
    for (const name of RULES) {
      const rule = rules[name as keyof typeof rules];
      expect(rule.meta.docs?.description, name).toBeTruthy();
      expect(rule.meta.docs?.url, name).toContain(`docs/lint.md#tenantry${name}`);
      expect(plugin.configs.recommended.rules?.[`tenantry/${name}`], name).toBe('error');
    }
    expect(plugin.configs.recommended.plugins?.tenantry).toBe(plugin);
  });

  it('reports through ESLint with configs.recommended', async () => {
    const eslint = eslintWith([
      { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
      plugin.configs.recommended as unknown as Config,
    ]);
    const code = [
      "import pg from 'pg';",
      'const pool = new pg.Pool();',
      "pool.query('select * from recordings where id = ' + process.argv[2]);",
      'runWithoutTenant(() => 1);',
      "queue.add('transcribe', { recordingId: 1 });",
      "pgTable('recordings', { id: uuid('id') });",
    ].join('\n');
    const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, 'scratch-lint-sample.ts') });
    expect(result!.messages.map((m) => [m.line, m.ruleId])).toEqual([
      [2, 'tenantry/no-raw-pool'],
      [3, 'tenantry/no-sql-concat'],
      [4, 'tenantry/restricted-escape-hatch'],
      [5, 'tenantry/job-needs-tenant'],
      [6, 'tenantry/tenant-table-has-tenant-id'],
    ]);
  });

  it('checks SQL migrations through sqlMigrationsConfig', async () => {
    const eslint = eslintWith([
      (await sqlMigrationsConfig({ files: ['db/migrations/*.sql'], globalTables: ['plans'] })) as unknown as Config,
    ]);
    const sql = 'create table plans (id text);\ncreate table recordings (id uuid);\n';
    const [result] = await eslint.lintText(sql, { filePath: path.join(ROOT, 'db/migrations/001_init.sql') });
    expect(result!.messages).toEqual([
      expect.objectContaining({ ruleId: 'tenantry/tenant-table-has-tenant-id', severity: 2, line: 2, column: 14 }),
    ]);
    const [broken] = await eslint.lintText('create table (;', {
      filePath: path.join(ROOT, 'db/migrations/002_bad.sql'),
    });
    expect(broken!.messages).toEqual([expect.objectContaining({ fatal: true, severity: 2 })]);
  });
});

describe('the reference server', () => {
  it('lints clean with the repository eslint.config.js (TypeScript and migrations)', async () => {
    const eslint = new ESLint({ cwd: ROOT });
    const results = await eslint.lintFiles(['app']);
    const linted = results.map((r) => path.relative(ROOT, r.filePath));
    expect(linted).toContain('app/main.ts');
    expect(linted).toContain('app/migrations/001_identity.sql');
    expect(
      results.flatMap((r) =>
        r.messages.map((m) => `${path.relative(ROOT, r.filePath)}:${m.line} ${m.ruleId} ${m.message}`),
      ),
    ).toEqual([]);
  }, 60_000);
});
