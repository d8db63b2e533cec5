import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { guardCommand } from '../../src/cli/guard-command.js';
import { migrateCommand } from '../../src/cli/migrate-command.js';
import { scanLogCommand } from '../../src/cli/scan-log-command.js';
import { sqlCommand } from '../../src/cli/sql-command.js';
import { tenantsCommand } from '../../src/cli/tenants-command.js';

const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
const oneLine = (text: string) => text.replace(/\s+/g, ' ');

/** A description's own "(default …)" followed by commander's, or commander's `[]` for a repeatable option. */
function expectDefaultsOnce(name: string, text: string): void {
  expect(oneLine(text), name).not.toMatch(/\(default[ :][^)]*\) \(default:/);
  expect(text, name).not.toContain('(default: [])');
}

describe('help text', () => {
  it('states each default once: commander prints "(default: …)" itself', () => {
    const globals = () => ({});
    for (const root of [
      tenantsCommand(globals),
      migrateCommand(globals),
      scanLogCommand(globals),
      guardCommand(globals),
      sqlCommand(globals),
    ])
      for (const c of everyCommand(root)) expectDefaultsOnce(c.name(), c.helpInformation());
  });

  it('install --help names every variable install reads, one line each, and no value', async () => {
    const { stdout } = await promisify(execFile)(path.resolve('node_modules/.bin/tsx'), [
      path.resolve('src/cli/main.ts'),
      'install',
      '--help',
    ]);
    const environment = stdout.slice(stdout.indexOf('Environment'));
    const named = [...environment.matchAll(/^ {2}([A-Z_]+) {2,}\S/gm)].map((m) => m[1]);
    expect(named).toEqual([
      'DATABASE_URL',
      'TENANTRY_DIR',
      'TENANTRY_APP_ROLE',
      'TENANTRY_OWNER_ROLE',
      'TENANTRY_SUPPORT_ROLE',
      'TENANTRY_ROUTER_ROLE',
      'TENANTRY_CONTEXT_SECRET',
      'TENANTRY_APP_PASSWORD',
      'TENANTRY_OWNER_PASSWORD',
      'TENANTRY_SUPPORT_PASSWORD',
      'TENANTRY_ROUTER_PASSWORD',
      'TENANTRY_JWT_SECRET',
      'TENANTRY_CLUSTERS',
    ]);
    // and every variable install-command.ts reads itself
    const source = readFileSync(path.resolve('src/cli/install-command.ts'), 'utf8');
    for (const [, name] of source.matchAll(/process\.env\.([A-Z_]+)/g)) expect(named, name).toContain(name);
  });

  it('tenants move --help, as a user runs it (subprocess)', async () => {
    const { stdout } = await promisify(execFile)(path.resolve('node_modules/.bin/tsx'), [
      path.resolve('src/cli/main.ts'),
      'tenants',
      'move',
      '--help',
    ]);
    expectDefaultsOnce('tenants move', stdout);
    expect(oneLine(stdout)).toContain('grace period before --cleanup may delete the source (default: "1h")');
  });
});
