// Setting Prisma up on a TenantPool fails loudly where it would not isolate: @prisma/adapter-pg
// with its own copy of pg (it would build a plain pool of its own), a client whose batching
// tenantPrisma does not know. And the committed generated client matches the schema.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, copyFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import { runAs } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { prismaAdapter, tenantPrisma, PrismaIntegrationError } from '../../src/prisma/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { PrismaClient } from './prisma/generated/client.js';

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

let tdb: TestDatabase;
let pool: TenantPool;

/**
 * `PrismaPg` as it is when npm installed a second copy of pg for it: the adapter's CommonJS
 * build loaded again after pg and the adapter are evicted from the require cache, so its
 * `pg.Pool` is another class than the one TenantPool extends.
 */
function prismaPgWithItsOwnPg(): typeof PrismaPg {
  const require = createRequire(import.meta.url);
  for (const key of Object.keys(require.cache))
    if (/[\\/]node_modules[\\/](pg|@prisma[\\/]adapter-pg)[\\/]/.test(key)) delete require.cache[key];
  const copy = (require('@prisma/adapter-pg') as { PrismaPg: typeof PrismaPg }).PrismaPg;
  const ownPg = require('pg') as typeof import('pg');
  expect(pool instanceof ownPg.Pool).toBe(false); // really two copies
  return copy;
}

/** The error's code: Prisma Client re-raises an error of the adapter factory with its code and message. */
function codeOf(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.owner.query(readFileSync(path.join(here, 'prisma/tables.sql'), 'utf8'));
  pool = tdb.appPool({ max: 2 });
});
afterAll(() => tdb?.drop());

describe('prismaAdapter', () => {
  it('keeps the TenantPool when one copy of pg serves both', async () => {
    const factory = prismaAdapter(PrismaPg, pool);
    const adapter = await factory.connect();
    expect(adapter.underlyingDriver()).toBe(pool);
    await adapter.dispose(); // without disposeExternalPool: the pool stays open
    expect(pool.ended).toBe(false);
  });

  it('with two copies of pg, PrismaPg silently builds its own plain pool; prismaAdapter refuses at once (PRISMA_POOL_REPLACED)', async () => {
    const OtherPrismaPg = prismaPgWithItsOwnPg();
    const silently = await new OtherPrismaPg(pool).connect();
    expect(silently.underlyingDriver()).not.toBe(pool); // the trap, as found
    await silently.dispose();

    let error: unknown;
    try {
      prismaAdapter(OtherPrismaPg, pool);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PrismaIntegrationError);
    expect((error as PrismaIntegrationError).code).toBe('PRISMA_POOL_REPLACED');
    expect((error as Error).message).not.toMatch(/password|postgres:\/\//i);
  });

  it('where the adapter hides the pool it kept, the first query fails with PRISMA_POOL_REPLACED, and nothing is written', async () => {
    const OtherPrismaPg = prismaPgWithItsOwnPg();
    // an adapter version that keeps the pool under another name: only the connect check sees it
    class Hiding extends OtherPrismaPg {
      constructor(...args: ConstructorParameters<typeof PrismaPg>) {
        super(...args);
        delete (this as unknown as { externalPool?: unknown }).externalPool; // connect() then falls back to a pool of its own
      }
    }
    const factory = prismaAdapter(Hiding, pool);
    const prisma = new PrismaClient({ adapter: factory });
    try {
      const error = await runAs(randomUUID(), () => prisma.project.create({ data: { name: 'lost' } })).catch(
        (e: unknown) => e,
      );
      expect(codeOf(error)).toBe('PRISMA_POOL_REPLACED');
      expect((error as Error).message).toMatch(/two copies of pg/);
    } finally {
      await prisma.$disconnect().catch(() => undefined);
    }
    expect((await tdb.admin.query('select count(*)::int as n from projects')).rows[0].n).toBe(0);
  });
});

describe('tenantPrisma', () => {
  it('refuses an object that is no Prisma Client it knows (PRISMA_CLIENT_UNSUPPORTED)', () => {
    for (const notAClient of [{}, { _requestHandler: {} }, { _requestHandler: { dataloader: { request() {} } } }]) {
      expect(() => tenantPrisma(notAClient)).toThrow(PrismaIntegrationError);
      try {
        tenantPrisma(notAClient);
      } catch (e) {
        expect((e as PrismaIntegrationError).code).toBe('PRISMA_CLIENT_UNSUPPORTED');
      }
    }
  });

  it('is idempotent: a second call leaves the client as it is', async () => {
    const prisma = new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) });
    try {
      const internals = prisma as unknown as { _requestHandler: { dataloader: unknown } };
      tenantPrisma(prisma);
      const loader = internals._requestHandler.dataloader;
      expect(tenantPrisma(prisma)).toBe(prisma);
      expect(internals._requestHandler.dataloader).toBe(loader);
      expect(await runAs(randomUUID(), () => prisma.project.findMany())).toEqual([]);
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe('the generated client (test/orm/prisma/generated)', () => {
  it('is what `prisma generate` makes of schema.prisma today (offline: no engine download)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tenantry-prisma-'));
    try {
      await copyFile(path.join(here, 'prisma/schema.prisma'), path.join(dir, 'schema.prisma'));
      // generate needs no engine with the prisma-client generator, but the CLI looks for the
      // schema engine first and would download it: any existing file satisfies that look-up
      await exec(path.resolve('node_modules/.bin/prisma'), ['generate', '--schema', path.join(dir, 'schema.prisma')], {
        env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.execPath, CHECKPOINT_DISABLE: '1' },
        timeout: 60_000,
      });
      const list = async (root: string): Promise<string[]> =>
        (await readdir(root, { recursive: true, withFileTypes: true }))
          .filter((e) => e.isFile())
          .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
          .sort();
      const committed = path.join(here, 'prisma/generated');
      const fresh = path.join(dir, 'generated');
      expect(await list(fresh)).toEqual(await list(committed));
      for (const file of await list(committed))
        expect(await readFile(path.join(fresh, file), 'utf8'), file).toBe(
          await readFile(path.join(committed, file), 'utf8'),
        );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
