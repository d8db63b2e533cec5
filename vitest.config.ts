import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// The reference server imports `tenantry` and its subpaths by package name, as a customer would.
// Under `npm start` Node resolves that self-reference with the `tenantry-source` condition of
// package.json's exports; here each export is aliased to the same source file.
const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as {
  exports: Record<string, { 'tenantry-source': string }>;
};
const alias = Object.entries(pkg.exports).map(([subpath, target]) => ({
  find: new RegExp(`^${subpath.replace(/^\./, 'tenantry').replace(/[/]/g, '\\/')}$`),
  replacement: fileURLToPath(new URL(target['tenantry-source'], import.meta.url)),
}));

export default defineConfig({
  resolve: { alias },
  test: {
    globalSetup: ['./test/support/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // expect.poll gives up after 1 s by default: too short for a browser on a loaded CI machine
    expect: { poll: { timeout: 15_000 } },
    allowOnly: !process.env.CI,
    pool: 'forks',
    maxWorkers: 2,
  },
});
