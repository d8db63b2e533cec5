import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Placements } from '../../src/tiers/placements.js';
import { TenantMover } from '../../src/tiers/move/tenant-mover.js';
import { withDatabase } from '../../src/tiers/provision.js';
import { ROLE_PASSWORD, createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { dropDatabase } from '../support/drop-database.js';

// `tenants move --ddl <migrations directory>` leaves the new location versioned like every other:
// `tenantry migrate status` finds it current, `tenantry migrate` has nothing to do there.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = path.join(ROOT, 'test', 'tiers', 'fixtures', 'migrations');

let db: TestDatabase;
let dir: string;
let migrations: string;
const database = () => `${db.name}_mig`;

/** The CLI as a subprocess against the test database; never throws. */
async function tenantry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', '--database-url', db.adminUrl, '--dir', dir, ...args],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        TENANTRY_OWNER_DATABASE_URL: db.ownerUrl,
        TENANTRY_CLUSTERS: '',
        TENANTRY_APP_PASSWORD: ROLE_PASSWORD,
        TENANTRY_OWNER_PASSWORD: ROLE_PASSWORD,
        TENANTRY_APP_ROLE: db.appRole,
        TENANTRY_OWNER_ROLE: db.ownerRole,
        TENANTRY_CONTEXT_SECRET: db.contextSecret,
      },
    },
  ).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

async function countAt(url: string, table: string, tenantId: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${table} where tenant_id = $1`, [
      tenantId,
    ]);
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-move-migrations-'));
  migrations = path.join(dir, 'migrations');
  await cp(FIXTURES, migrations, { recursive: true });
  const first = await tenantry('migrate', '--migrations', migrations);
  expect(first.code, first.stdout + first.stderr).toBe(0);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await dropDatabase(db.admin, database()).catch(() => undefined);
  await db.drop();
});

// each test runs the CLI several times as a subprocess (about 5 s each here, far more under load)
const SUBPROCESS_TEST_MS = 300_000;

describe('tenants move --ddl with a migrations directory', () => {
  it(
    'records the migrations at the new schema, then at the new database: migrate status stays clean',
    async () => {
      const { rows } = await db.owner.query<{ id: string }>(
        `insert into tenantry.tenants (slug, name) values ('mig-move', 'M') returning id`,
      );
      const id = rows[0]!.id;
      await db.admin.query(`insert into notes (tenant_id, body) select $1, 'n' || g from generate_series(1, 40) g`, [
        id,
      ]);

      // a single SQL file in a deployment versioned by `tenantry migrate` is refused before anything is made
      const file = path.join(migrations, 'tenant', '002_notes.sql');
      const refused = await tenantry(
        'tenants',
        'move',
        'mig-move',
        '--to',
        'schema',
        '--schema',
        't_mig',
        '--ddl',
        file,
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('pass its migrations directory');
      expect(refused.stderr).not.toMatch(/\n\s+at /); // no stack
      const made = await db.admin.query(`select to_regnamespace('t_mig') is not null as made`);
      expect(made.rows[0].made).toBe(false);

      const toSchema = await tenantry(
        'tenants',
        'move',
        'mig-move',
        '--to',
        'schema',
        '--schema',
        't_mig',
        '--ddl',
        migrations,
      );
      expect(toSchema.code, toSchema.stdout + toSchema.stderr).toBe(0);
      expect(toSchema.stderr).toContain('target at migration version 3');
      expect(toSchema.stdout).toMatch(/: done \(schema on home schema t_mig\)/);
      expect(await countAt(db.adminUrl, 't_mig.notes', id)).toBe(40);
      const tracked = await db.admin.query<{ version: number; name: string }>(
        `select version, name from tenantry.schema_migrations where target = 't_mig' order by version`,
      );
      // a schema target records the tenant migrations only, as `tenantry migrate` does
      expect(tracked.rows).toEqual([
        { version: 2, name: '002_notes.sql' },
        { version: 3, name: '003_note_tags.sql' },
      ]);

      let status = await tenantry('migrate', 'status', '--migrations', migrations);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).toContain(`home/${db.name}/t_mig`);
      expect(status.stdout).toContain('latest version 3; targets by version: 3: 2');
      let again = await tenantry('migrate', '--migrations', migrations);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/2 targets in .* 0 migrated, 2 already current, 0 failed/);

      // and on to a database of its own (global and tenant migrations, in that database)
      const toDatabase = await tenantry(
        'tenants',
        'move',
        'mig-move',
        '--to',
        'database',
        '--database',
        database(),
        '--ddl',
        migrations,
      );
      expect(toDatabase.code, toDatabase.stdout + toDatabase.stderr).toBe(0);
      const own = withDatabase(db.adminUrl, database());
      expect(await countAt(own, 'notes', id)).toBe(40);
      const client = new pg.Client({ connectionString: own });
      await client.connect();
      try {
        const { rows: versions } = await client.query<{ v: number[] }>(
          'select array_agg(version order by version) as v from tenantry.schema_migrations',
        );
        expect(versions[0]!.v).toEqual([1, 2, 3]);
      } finally {
        await client.end();
      }
      status = await tenantry('migrate', 'status', '--migrations', migrations);
      expect(status.code, status.stdout + status.stderr).toBe(0);
      expect(status.stdout).toContain(`home/${database()}`);
      again = await tenantry('migrate', '--migrations', migrations);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/0 migrated, \d+ already current, 0 failed/);
    },
    SUBPROCESS_TEST_MS,
  );

  it(
    'a move recorded by an earlier attempt and resumed by the command reports its own run, not the time since the record',
    async () => {
      const { rows } = await db.owner.query<{ id: string }>(
        `insert into tenantry.tenants (slug, name) values ('mig-resume', 'R') returning id`,
      );
      await db.admin.query(`insert into notes (tenant_id, body) select $1, 'r' || g from generate_series(1, 5) g`, [
        rows[0]!.id,
      ]);
      const placements = new Placements({ catalog: db.owner, owners: { home: db.ownerUrl } });
      try {
        // an earlier attempt: recorded, then nothing ran
        await new TenantMover({ placements, catalog: db.owner }).start(rows[0]!.id, {
          tier: 'schema',
          cluster: 'home',
          schema: 't_resume',
        });
        const resumed = await tenantry(
          'tenants',
          'move',
          'mig-resume',
          '--to',
          'schema',
          '--schema',
          't_resume',
          '--ddl',
          migrations,
        );
        expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
        expect(resumed.stdout).toMatch(
          /this run: \d+ ms \(resumed a move recorded at .*; earlier attempts not counted\)/,
        );
        expect(resumed.stdout).not.toContain('ms to the switch');
        expect(resumed.stderr).toMatch(/copying notes {2}5\/5 rows \(100%\)\n/);
      } finally {
        await placements.end();
      }
    },
    SUBPROCESS_TEST_MS,
  );
});
