// ESLint flat config. Everything that ships or tests it (src, app, test, bench, examples) gets
// typescript-eslint's recommended rules; the reference server (app/) also gets Tenantry's own
// plugin, so the example application proves the rules run clean on code that isolates tenants
// correctly. `npm run lint`.
import tseslint from 'typescript-eslint';
import { tsImport } from 'tsx/esm/api';

// The plugin is TypeScript source in this repository (users import the built `tenantry/eslint`);
// tsx, already used by `npm start`, loads it without a build step.
const { plugin: tenantry, sqlMigrationsConfig } = await tsImport('./src/lint/index.ts', import.meta.url);

export default [
  { ignores: ['dist/**', 'node_modules/**', '.tenantry/**', 'test/orm/prisma/generated/**'] },
  ...tseslint.configs.recommended.map((config) => ({
    ...config,
    files: ['src/**/*.ts', 'app/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
  })),
  {
    files: ['src/**/*.ts', 'app/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    rules: {
      // `_`-prefixed names are deliberately unused (a parameter kept for its position)
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    files: ['app/**/*.ts'],
    languageOptions: { parser: tseslint.parser, ecmaVersion: 2023, sourceType: 'module' },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  { ...tenantry.configs.recommended, files: ['app/**/*.ts'] },
  {
    files: ['app/**/*.ts'],
    rules: {
      // Raw pools are legitimate where the server acts as the OWNER role, outside any tenant:
      // main.ts opens the owner pool that runs migrations and seeds the demo before the
      // TenantPool serves requests; migrate.ts opens its own client (and an admin one to create
      // extensions) when given a URL; tiers/tenant-tiers.ts opens the owner pool of the catalog
      // that migrations everywhere and moves run on; console/console-clusters.ts asks each cluster,
      // as its admin, for its connections and database sizes (bounded, for staff);
      // citus-distribution.ts distributes the tables on a Citus coordinator as its superuser
      // (TENANTRY_CITUS). Request handling never gets these.
      'tenantry/no-raw-pool': [
        'error',
        {
          allow: [
            'app/main.ts',
            'app/migrate.ts',
            'app/tiers/tenant-tiers.ts',
            'app/console/console-clusters.ts',
            'app/citus-distribution.ts',
          ],
        },
      ],
    },
  },
  // CREATE TABLE in the migrations must have tenant_id, unless the table is global.
  // app_private.users holds identities: one person may belong to several tenants, so it is
  // global by design and never granted to the app role (see 001_identity.sql). The outbox and the
  // address confirmations (007) are mail to addresses, before any identity or membership exists:
  // global too, and likewise unreachable for the app role. The console's audit (011) is the
  // operator's record across tenants (kept after a purge), unreachable for the app role.
  await sqlMigrationsConfig({
    files: ['app/migrations/*.sql', 'app/data-migrations/**/*.sql'],
    globalTables: [
      'app_private.users',
      'app_private.outbox',
      'app_private.address_confirmations',
      'app_private.console_audit',
    ],
  }),
];
