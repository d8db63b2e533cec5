import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { libraryMigrations, migrationLabel } from '../../src/policy/library-migrations.js';

const exec = promisify(execFile);

// The migrations are .sql files next to each feature's code: the build must ship them where the
// compiled runner looks (dist/<feature>/migrations), which `npm run build` does with
// scripts/copy-migrations.mjs. Built here into a scratch folder inside the project (so the
// compiled code resolves its dependencies) exactly as `npm run build` builds dist/.
describe('the built package', () => {
  it('finds every library migration from the compiled code', { timeout: 240_000 }, async () => {
    const out = path.resolve('node_modules/.cache/tenantry-build-test');
    await rm(out, { recursive: true, force: true });
    try {
      await exec(path.resolve('node_modules/.bin/tsc'), ['-p', 'tsconfig.build.json', '--outDir', out]);
      await exec(process.execPath, ['scripts/copy-migrations.mjs', out]);
      const { stdout } = await exec(process.execPath, [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(path.join(out, 'policy/library-migrations.js'))});
         console.log(JSON.stringify(m.libraryMigrations().map((x) => [m.migrationLabel(x), x.checksum])));`,
      ]);
      expect(JSON.parse(stdout)).toEqual(libraryMigrations().map((m) => [migrationLabel(m), m.checksum]));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('lists dist in package.json files and copies the migrations in the build script', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as {
      files: string[];
      scripts: Record<string, string>;
    };
    expect(pkg.files).toContain('dist');
    expect(pkg.scripts.build).toContain('scripts/copy-migrations.mjs');
  });
});
