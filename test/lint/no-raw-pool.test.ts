import { noRawPool } from '../../src/lint/rules/no-raw-pool.js';
import { runRule } from './rule-tester.js';

runRule('no-raw-pool', noRawPool, {
  valid: [
    `import { TenantPool } from 'tenantry'; const pool = new TenantPool({ connectionString: url });`,
    // types only: no connection is opened
    `import type { Pool } from 'pg'; let p: Pool | undefined;`,
    `import pg from 'pg'; export function f(pool: pg.Pool) { return pool.query('select 1'); }`,
    `import { Pool } from 'pg'; class P extends Pool {}`,
    // a Pool of another library
    `import { Pool } from 'generic-pool'; new Pool();`,
    `const pool = new Pool();`,
    `import postgres from 'postgres'; const x = postgres;`,
    `const { native } = require('pg'); native.types.setTypeParser(1, String); pg.types;`,
    `import pg from 'pg'; pg.types.setTypeParser(20, Number);`,
    // a local name that shadows the import is not the driver
    `import { Pool } from 'pg'; function make(Pool: new () => object) { return new Pool(); }`,
    `import pg from 'pg'; function f(pg: { Pool: new () => object }) { return new pg.Pool(); }`,
    { code: `import pg from 'pg'; new pg.Pool();`, filename: 'app/main.ts', options: [{ allow: ['app/main.ts'] }] },
    {
      code: `import pg from 'pg'; new pg.Client();`,
      filename: 'src/control/migrate.ts',
      options: [{ allow: ['src/control/**'] }],
    },
    {
      code: `import postgres from 'postgres'; postgres(url);`,
      filename: 'scripts/deep/one.ts',
      options: [{ allow: ['scripts/**/*.ts'] }],
    },
  ],
  invalid: [
    {
      code: `import pg from 'pg'; const pool = new pg.Pool({ connectionString: url });`,
      errors: [{ messageId: 'rawPool', data: { what: 'new pg.Pool(…)', module: 'pg' } }],
    },
    {
      code: `import * as pg from 'pg'; new pg.Client();`,
      errors: [{ messageId: 'rawPool', data: { what: 'new pg.Client(…)', module: 'pg' } }],
    },
    {
      code: `import { Pool } from 'pg'; new Pool();`,
      errors: [{ messageId: 'rawPool', data: { what: 'new Pool(…)', module: 'pg' } }],
    },
    {
      code: `import { Client as C } from 'pg'; new C();`,
      errors: [{ messageId: 'rawPool', data: { what: 'new C(…)', module: 'pg' } }],
    },
    { code: `import pg from 'pg'; new pg.native.Pool();`, errors: [{ messageId: 'rawPool' }] },
    { code: `const pg = require('pg'); new pg.Pool();`, errors: [{ messageId: 'rawPool' }] },
    { code: `const { Client } = require('pg'); new Client();`, errors: [{ messageId: 'rawPool' }] },
    {
      code: `const { native } = require('pg'); new native.Client();`,
      errors: [{ messageId: 'rawPool', data: { what: 'new native.Client(…)', module: 'pg' } }],
    },
    {
      code: `import postgres from 'postgres'; const sql = postgres(process.env.URL);`,
      errors: [{ messageId: 'rawPool', data: { what: 'postgres(…)', module: 'postgres' } }],
    },
    {
      code: `import { neon, Pool } from '@neondatabase/serverless'; neon(url); new Pool();`,
      errors: [{ messageId: 'rawPool' }, { messageId: 'rawPool' }],
    },
    { code: `import { createPool } from '@vercel/postgres'; createPool();`, errors: [{ messageId: 'rawPool' }] },
    { code: `import Pool from 'pg-pool'; new Pool();`, errors: [{ messageId: 'rawPool' }] },
    // with TenantPool imported, a suggestion swaps the constructor
    {
      code: `import pg from 'pg'; import { TenantPool } from 'tenantry'; new pg.Pool({ connectionString: url });`,
      errors: [
        {
          messageId: 'rawPool',
          suggestions: [
            {
              messageId: 'useTenantPool',
              output: `import pg from 'pg'; import { TenantPool } from 'tenantry'; new TenantPool({ connectionString: url });`,
            },
          ],
        },
      ],
    },
    {
      code: `import { Pool, Client } from 'pg'; import { TenantPool as TP } from 'tenantry'; new Pool(); new Client();`,
      errors: [
        {
          messageId: 'rawPool',
          suggestions: [
            {
              messageId: 'useTenantPool',
              output: `import { Pool, Client } from 'pg'; import { TenantPool as TP } from 'tenantry'; new TP(); new Client();`,
            },
          ],
        },
        { messageId: 'rawPool', suggestions: [] },
      ],
    },
    // allowed elsewhere only
    {
      code: `import pg from 'pg'; new pg.Pool();`,
      filename: 'app/server.ts',
      options: [{ allow: ['app/main.ts'] }],
      errors: [{ messageId: 'rawPool' }],
    },
    {
      code: `import pg from 'pg'; new pg.Pool();`,
      filename: 'app/sub/main.ts',
      options: [{ allow: ['app/*.ts'] }],
      errors: [{ messageId: 'rawPool' }],
    },
  ],
});
