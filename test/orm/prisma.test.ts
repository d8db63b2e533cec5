// Prisma 7 through @prisma/adapter-pg on a TenantPool, with tenantry/prisma: queries, nested
// writes, both kinds of $transaction and raw SQL run as the tenant in context; the other
// tenant's attempts are refused and change nothing; and requests of several tenants made in the
// same tick (which Prisma Client batches together) each run as their own tenant.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { prismaAdapter, tenantPrisma } from '../../src/prisma/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { Prisma, PrismaClient } from './prisma/generated/client.js';

let tdb: TestDatabase;
let pool: TenantPool;
let prisma: PrismaClient;
const A = randomUUID();
const B = randomUUID();
let projectA: string;
let projectB: string;
let taskA: string;

interface StoredRow {
  table: string;
  tenant_id: string;
  id: string;
  label: string;
}

/** What the superuser sees, past RLS: every row of both tables. */
async function stored(): Promise<StoredRow[]> {
  const { rows } = await tdb.admin.query<StoredRow>(
    `select 'projects' as table, tenant_id, id, name as label from projects
     union all select 'tasks', tenant_id, id, title || case when done then ' (done)' else '' end from tasks
     order by 1, 2, 4, 3`,
  );
  return rows;
}

/** The SQLSTATE under a Prisma error raised from the driver adapter (Prisma 7: meta.driverAdapterError.cause). */
function sqlState(error: unknown): string | undefined {
  const cause = (error as { meta?: { driverAdapterError?: { cause?: { originalCode?: string } } } }).meta
    ?.driverAdapterError?.cause;
  return cause?.originalCode;
}

/** The Prisma error code (P2025 record not found…), or undefined when `error` is not one. */
function prismaCode(error: unknown): string | undefined {
  return error instanceof Prisma.PrismaClientKnownRequestError ? error.code : undefined;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.owner.query(readFileSync(new URL('./prisma/tables.sql', import.meta.url), 'utf8'));
  pool = tdb.appPool({ max: 6 });
  prisma = tenantPrisma(new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }));
  const a = await runAs(A, () =>
    prisma.project.create({
      data: { name: 'a-seed', tasks: { create: { title: 'a-task' } } },
      include: { tasks: true },
    }),
  );
  projectA = a.id;
  taskA = a.tasks[0]!.id;
  projectB = (await runAs(B, () => prisma.project.create({ data: { name: 'b-seed' } }))).id;
});
afterAll(async () => {
  await prisma?.$disconnect(); // leaves the TenantPool to its owner: drop() ends it
  await tdb?.drop();
});

describe('Prisma on a TenantPool (tenantry/prisma)', () => {
  it('reads see only the tenant in context, and nothing without one', async () => {
    const a = await runAs(A, () => prisma.project.findMany({ select: { tenantId: true, name: true } }));
    const b = await runAs(B, () => prisma.project.findMany({ select: { name: true }, where: { name: { not: '' } } }));
    expect(a).toEqual([{ tenantId: A, name: 'a-seed' }]);
    expect(b).toEqual([{ name: 'b-seed' }]);
    expect(await runAs(B, () => prisma.project.findUnique({ where: { id: projectA } }))).toBeNull();
    expect(await runAs(B, () => prisma.task.count())).toBe(0);
    expect(await runAs(A, () => prisma.task.count())).toBe(1);
    expect(await runWithoutTenant(() => prisma.project.findMany())).toEqual([]);
    expect(await prisma.task.findMany()).toEqual([]); // outside any runAs: no tenant, no rows
  });

  it('a create takes the tenant from context (column default) and returns it', async () => {
    const row = await runAs(B, () => prisma.project.create({ data: { name: 'b-created' } }));
    expect(row.tenantId).toBe(B);
    expect(await stored()).toContainEqual({ table: 'projects', tenant_id: B, id: row.id, label: 'b-created' });
  });

  it('a create naming another tenant is refused by PostgreSQL (42501), and nothing is stored', async () => {
    const before = await stored();
    const error = await runAs(A, () => prisma.project.create({ data: { name: 'forged', tenantId: B } })).catch(
      (e: unknown) => e,
    );
    expect(sqlState(error)).toBe('42501');
    const none = await runWithoutTenant(() => prisma.project.create({ data: { name: 'no-tenant' } })).catch(
      (e: unknown) => e,
    );
    expect(none).toBeInstanceOf(Error);
    expect(await stored()).toEqual(before);
  });

  it('updates and deletes of another tenant’s rows find nothing (P2025, counts 0), and nothing changes', async () => {
    const before = await stored();
    const update = await runAs(B, () =>
      prisma.project.update({ where: { id: projectA }, data: { name: 'pwned' } }),
    ).catch((e: unknown) => e);
    const remove = await runAs(B, () => prisma.task.delete({ where: { id: taskA } })).catch((e: unknown) => e);
    expect(prismaCode(update)).toBe('P2025');
    expect(prismaCode(remove)).toBe('P2025');
    expect(
      await runAs(B, () => prisma.project.updateMany({ where: { tenantId: A }, data: { name: 'pwned' } })),
    ).toEqual({
      count: 0,
    });
    expect(await runAs(B, () => prisma.task.deleteMany({ where: { projectId: projectA } }))).toEqual({ count: 0 });
    const upsert = await runAs(B, () =>
      prisma.project.upsert({
        where: { id: projectA },
        update: { name: 'pwned' },
        create: { id: projectA, name: 'pwned' },
      }),
    ).catch((e: unknown) => e);
    expect(upsert).toBeInstanceOf(Error); // the id is taken (by A): the insert fails, A's row is untouched
    expect(await stored()).toEqual(before);
  });

  describe('nested writes', () => {
    it('a project with its tasks is written as the tenant in context, tasks tied to it by (tenant_id, project_id)', async () => {
      const created = await runAs(B, () =>
        prisma.project.create({
          data: { name: 'b-nested', tasks: { create: [{ title: 'b-n1' }, { title: 'b-n2', done: true }] } },
          include: { tasks: { orderBy: { title: 'asc' } } },
        }),
      );
      expect(created.tenantId).toBe(B);
      expect(created.tasks.map((t) => [t.tenantId, t.projectId, t.title])).toEqual([
        [B, created.id, 'b-n1'],
        [B, created.id, 'b-n2'],
      ]);
      const updated = await runAs(B, () =>
        prisma.project.update({
          where: { id: created.id },
          data: {
            name: 'b-nested!',
            tasks: { updateMany: { where: { done: false }, data: { done: true } }, create: { title: 'b-n3' } },
          },
          include: { tasks: { orderBy: { title: 'asc' } } },
        }),
      );
      expect(updated.tasks.map((t) => [t.tenantId, t.title, t.done])).toEqual([
        [B, 'b-n1', true],
        [B, 'b-n2', true],
        [B, 'b-n3', false],
      ]);
      const rows = (await stored()).filter((r) => r.label.startsWith('b-n'));
      expect(rows.every((r) => r.tenant_id === B)).toBe(true);
      expect(rows.map((r) => r.label)).toEqual(['b-nested!', 'b-n1 (done)', 'b-n2 (done)', 'b-n3']);
    });

    it('from the other tenant: connecting to, creating under or updating through a project of A is refused, and nothing changes', async () => {
      const before = await stored();
      const connect = await runAs(B, () =>
        prisma.task.create({ data: { title: 'b-intruder', project: { connect: { id: projectA } } } }),
      ).catch((e: unknown) => e);
      expect(prismaCode(connect)).toBe('P2025'); // A's project is not there for B
      // naming A's project by its columns: the foreign key is (tenant_id, project_id), and B's
      // context cannot write A's tenant_id (RLS), nor reach A's project with its own (23503)
      const direct = await runAs(B, () =>
        prisma.task.createMany({ data: [{ title: 'b-intruder', projectId: projectA, tenantId: A }] }),
      ).catch((e: unknown) => e);
      expect(sqlState(direct)).toBe('42501');
      const ownTenant = await runAs(B, () =>
        prisma.task.createMany({ data: [{ title: 'b-intruder', projectId: projectA }] }),
      ).catch((e: unknown) => e);
      expect(sqlState(ownTenant)).toBe('23503');
      const through = await runAs(B, () =>
        prisma.project.update({ where: { id: projectA }, data: { tasks: { create: { title: 'b-intruder' } } } }),
      ).catch((e: unknown) => e);
      expect(prismaCode(through)).toBe('P2025');
      expect(await stored()).toEqual(before);
    });

    it('a nested write that fails half-way leaves nothing behind', async () => {
      const before = await stored();
      const error = await runAs(A, () =>
        prisma.project.create({
          data: { name: 'a-half', tasks: { create: [{ title: 'a-half-1' }, { id: taskA, title: 'a-half-2' }] } },
        }),
      ).catch((e: unknown) => e);
      expect(sqlState(error)).toBe('23505'); // the second task's id is taken: after the project and the first task
      expect(await stored()).toEqual(before);
    });
  });

  describe('$transaction', () => {
    it('a batch transaction runs as the tenant in context, and rolls back as a whole', async () => {
      const [created, all] = await runAs(A, () =>
        prisma.$transaction([
          prisma.project.create({ data: { name: 'a-batch' } }),
          prisma.project.findMany({ select: { tenantId: true, name: true }, orderBy: { name: 'asc' } }),
        ]),
      );
      expect(created.tenantId).toBe(A);
      expect(all).toEqual([
        { tenantId: A, name: 'a-batch' },
        { tenantId: A, name: 'a-seed' },
      ]);
      const before = await stored();
      const error = await runAs(A, () =>
        prisma.$transaction([
          prisma.project.create({ data: { name: 'a-doomed' } }),
          prisma.project.update({ where: { id: projectB }, data: { name: 'pwned' } }), // B's: not found
        ]),
      ).catch((e: unknown) => e);
      expect(prismaCode(error)).toBe('P2025');
      expect(await stored()).toEqual(before);
    });

    it('an interactive transaction runs as the tenant in context, sees only its rows, and commits', async () => {
      const seen = await runAs(B, () =>
        prisma.$transaction(async (tx) => {
          const p = await tx.project.create({ data: { name: 'b-itx', tasks: { create: { title: 'b-itx-1' } } } });
          await tx.task.create({ data: { title: 'b-itx-2', projectId: p.id } });
          const [visibleOfA, raw] = await Promise.all([
            tx.project.findUnique({ where: { id: projectA } }),
            tx.$queryRaw<{ n: number }[]>`select count(*)::int as n from tasks where tenant_id <> ${B}::uuid`,
          ]);
          return {
            visibleOfA,
            raw,
            titles: (await tx.task.findMany({ where: { projectId: p.id } })).map((t) => t.title),
          };
        }),
      );
      expect(seen.visibleOfA).toBeNull();
      expect(seen.raw).toEqual([{ n: 0 }]);
      expect(seen.titles.sort()).toEqual(['b-itx-1', 'b-itx-2']);
      const rows = (await stored()).filter((r) => r.label.startsWith('b-itx'));
      expect(rows.map((r) => r.tenant_id)).toEqual([B, B, B]);
    });

    it('an interactive transaction that throws, or fails in PostgreSQL, rolls back and frees its connection', async () => {
      const before = await stored();
      const thrown = await runAs(A, () =>
        prisma.$transaction(async (tx) => {
          await tx.project.create({ data: { name: 'a-doomed' } });
          throw new Error('changed my mind');
        }),
      ).catch((e: unknown) => e);
      expect((thrown as Error).message).toBe('changed my mind');
      const failed = await runAs(A, () =>
        prisma.$transaction(async (tx) => {
          await tx.project.create({ data: { name: 'a-doomed' } });
          await tx.$executeRaw`select 1/0`;
        }),
      ).catch((e: unknown) => e);
      expect(sqlState(failed)).toBe('22012');
      expect(await stored()).toEqual(before);
      // every connection is back and usable
      const counts = await Promise.all(Array.from({ length: 8 }, () => runAs(A, () => prisma.project.count())));
      expect(new Set(counts).size).toBe(1);
    });

    it('from the other tenant: inside its transaction A’s rows cannot be read, changed or deleted, and nothing changes', async () => {
      const before = await stored();
      const result = await runAs(B, () =>
        prisma.$transaction(async (tx) => ({
          read: await tx.project.findMany({ where: { id: projectA } }),
          updated: await tx.project.updateMany({ where: { id: projectA }, data: { name: 'pwned' } }),
          deleted: await tx.task.deleteMany({ where: { id: taskA } }),
          raw: await tx.$executeRaw`update projects set name = 'pwned' where tenant_id = ${A}::uuid`,
        })),
      );
      expect(result).toEqual({ read: [], updated: { count: 0 }, deleted: { count: 0 }, raw: 0 });
      expect(await stored()).toEqual(before);
    });
    it('a query under another tenant on A’s transaction is refused (TENANT_CONTEXT_MISMATCH), and the transaction rolls back', async () => {
      const before = await stored();
      const error = await runAs(A, () =>
        prisma.$transaction(async (tx) => {
          await tx.project.create({ data: { name: 'a-doomed' } });
          await runAs(B, () => tx.project.create({ data: { name: 'b-smuggled' } }));
        }),
      ).catch((e: unknown) => e);
      // Prisma re-raises the pool's error with its code (a PrismaClientKnownRequestError)
      expect((error as { code?: string }).code).toBe('TENANT_CONTEXT_MISMATCH');
      expect(await stored()).toEqual(before);
    });
  });

  describe('$queryRaw and $executeRaw', () => {
    it('raw reads see only the tenant in context', async () => {
      const rows = await runAs(
        A,
        () => prisma.$queryRaw<{ tenant_id: string }[]>`select distinct tenant_id from projects`,
      );
      expect(rows).toEqual([{ tenant_id: A }]);
      const unsafe = await runAs(B, () =>
        prisma.$queryRawUnsafe<{ n: number }[]>('select count(*)::int as n from tasks where tenant_id = $1::uuid', A),
      );
      expect(unsafe).toEqual([{ n: 0 }]);
      expect(await runWithoutTenant(() => prisma.$queryRaw`select id from projects`)).toEqual([]);
    });

    it('raw writes of the other tenant touch nothing; an insert naming it is refused (42501)', async () => {
      const before = await stored();
      expect(await runAs(B, () => prisma.$executeRaw`delete from tasks where tenant_id = ${A}::uuid`)).toBe(0);
      expect(
        await runAs(B, () => prisma.$executeRaw`update projects set name = 'pwned'  where id = ${projectA}::uuid`),
      ).toBe(0);
      const forged = await runAs(
        B,
        () => prisma.$executeRaw`insert into projects (tenant_id, name) values (${A}::uuid, 'forged')`,
      ).catch((e: unknown) => e);
      expect(sqlState(forged)).toBe('42501');
      expect(await stored()).toEqual(before);
    });
  });
});
