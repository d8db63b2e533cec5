// Requests of several tenants made in the same tick. Prisma Client queues findUnique calls (and
// the requests of batch $transactions) and dispatches every queued batch from one
// process.nextTick callback, which runs in the async context of the first caller. Untreated,
// the second tenant's request runs as the first tenant: its findUnique answers null, a
// findUnique on another model reads the first tenant's row, a batch transaction writes as the
// first tenant. tenantPrisma gives each tenant its own loader per tick.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PrismaPg } from '@prisma/adapter-pg';
import { runAs, runWithoutTenant } from '../../src/context/tenant-context.js';
import type { TenantPool } from '../../src/data/tenant-pool.js';
import { prismaAdapter, tenantPrisma } from '../../src/prisma/index.js';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { PrismaClient } from './prisma/generated/client.js';

let tdb: TestDatabase;
let pool: TenantPool;
let prisma: PrismaClient;
let untreated: PrismaClient;

interface Seeded {
  tenant: string;
  project: string;
  task: string;
}
const PAIRS = 20;
const pairs: [Seeded, Seeded][] = [];

async function stored(): Promise<{ tenant_id: string; name: string }[]> {
  return (await tdb.admin.query('select tenant_id, name from projects order by tenant_id, name')).rows;
}

beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.owner.query(readFileSync(new URL('./prisma/tables.sql', import.meta.url), 'utf8'));
  pool = tdb.appPool({ max: 6 });
  prisma = tenantPrisma(new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }));
  untreated = new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }); // the trap, for contrast
  const seed = async (): Promise<Seeded> => {
    const tenant = randomUUID();
    const p = await runAs(tenant, () =>
      prisma.project.create({
        data: { name: `p-${tenant}`, tasks: { create: { title: `t-${tenant}` } } },
        include: { tasks: true },
      }),
    );
    return { tenant, project: p.id, task: p.tasks[0]!.id };
  };
  for (let i = 0; i < PAIRS; i++) pairs.push([await seed(), await seed()]);
});
afterAll(async () => {
  await prisma?.$disconnect();
  await untreated?.$disconnect();
  await tdb?.drop();
});

/** Both calls start in the same tick (Promise.all calls runAs twice synchronously). */
function sameTick<T>(first: () => Promise<T>, second: () => Promise<T>): Promise<[T, T]> {
  return Promise.all([first(), second()]);
}

describe('Prisma requests of several tenants in the same tick', () => {
  it(`findUnique of two tenants in the same tick: each gets its own row (${PAIRS} of ${PAIRS} pairs)`, async () => {
    for (const [x, y] of pairs) {
      const [rx, ry] = await sameTick(
        () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
        () => runAs(y.tenant, () => prisma.project.findUnique({ where: { id: y.project } })),
      );
      expect(rx).toEqual({ id: x.project, tenantId: x.tenant, name: `p-${x.tenant}` });
      expect(ry).toEqual({ id: y.project, tenantId: y.tenant, name: `p-${y.tenant}` });
    }
  });

  it('the trap, without tenantPrisma: the second tenant’s findUnique ran as the first and answered null', async () => {
    let wrong = 0;
    for (const [x, y] of pairs) {
      const [, ry] = await sameTick(
        () => runAs(x.tenant, () => untreated.project.findUnique({ where: { id: x.project } })),
        () => runAs(y.tenant, () => untreated.project.findUnique({ where: { id: y.project } })),
      );
      if (ry === null) wrong++;
    }
    // if this ever fails, Prisma stopped batching across callers: tenantPrisma may then be obsolete
    expect(wrong).toBe(PAIRS);
  });

  it('from the other tenant, in the same tick: asking for the first tenant’s row by id still answers null', async () => {
    for (const [x, y] of pairs.slice(0, 5)) {
      const [rx, ry] = await sameTick(
        () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
        () => runAs(y.tenant, () => prisma.project.findUnique({ where: { id: x.project } })), // x's row, asked by y
      );
      expect(rx?.tenantId).toBe(x.tenant);
      expect(ry).toBeNull();
      // on another model (a batch of its own, dispatched from the same tick)
      const [, task] = await sameTick<unknown>(
        () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
        () => runAs(y.tenant, () => prisma.task.findUnique({ where: { id: x.task } })),
      );
      expect(task).toBeNull();
    }
  });

  it('untreated, the other model’s findUnique even read the first tenant’s row: tenantPrisma closes that', async () => {
    const [x, y] = pairs[0]!;
    const [, leaked] = await sameTick<unknown>(
      () => runAs(x.tenant, () => untreated.project.findUnique({ where: { id: x.project } })),
      () => runAs(y.tenant, () => untreated.task.findUnique({ where: { id: x.task } })),
    );
    expect((leaked as { tenantId?: string } | null)?.tenantId).toBe(x.tenant); // the trap, as found
    const [, closed] = await sameTick<unknown>(
      () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
      () => runAs(y.tenant, () => prisma.task.findUnique({ where: { id: x.task } })),
    );
    expect(closed).toBeNull();
  });

  it('untreated, a batch transaction of the second tenant wrote as the first: tenantPrisma closes that', async () => {
    const [x, y] = pairs[3]!;
    const [, [wrong]] = await sameTick(
      () => runAs(x.tenant, () => untreated.$transaction([untreated.project.create({ data: { name: 'untreated' } })])),
      () => runAs(y.tenant, () => untreated.$transaction([untreated.project.create({ data: { name: 'untreated' } })])),
    );
    expect(wrong!.tenantId).toBe(x.tenant); // the trap, as found: y's row stored under x
  });

  it('batch transactions of two tenants in the same tick write each as its own tenant', async () => {
    const before = await stored();
    for (const [x, y] of pairs) {
      const [[px], [py]] = await sameTick(
        () => runAs(x.tenant, () => prisma.$transaction([prisma.project.create({ data: { name: 'batch' } })])),
        () => runAs(y.tenant, () => prisma.$transaction([prisma.project.create({ data: { name: 'batch' } })])),
      );
      expect([px!.tenantId, py!.tenantId]).toEqual([x.tenant, y.tenant]);
    }
    const added = (await stored()).filter((r) => !before.some((b) => b.tenant_id === r.tenant_id && b.name === r.name));
    expect(added.length).toBe(2 * PAIRS);
    expect(new Set(added.map((r) => r.tenant_id))).toEqual(new Set(pairs.flat().map((s) => s.tenant)));
  });

  it('a tenant and no tenant in the same tick: the tenant gets its row, no tenant gets nothing', async () => {
    const [x] = pairs[1]!;
    const [rx, none] = await sameTick(
      () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
      () => runWithoutTenant(() => prisma.project.findUnique({ where: { id: x.project } })),
    );
    expect(rx?.tenantId).toBe(x.tenant);
    expect(none).toBeNull();
    const [none2, rx2] = await sameTick(
      () => runWithoutTenant(() => prisma.project.findUnique({ where: { id: x.project } })),
      () => runAs(x.tenant, () => prisma.project.findUnique({ where: { id: x.project } })),
    );
    expect(none2).toBeNull();
    expect(rx2?.tenantId).toBe(x.tenant);
  });

  it('one tenant’s same-tick findUniques are still batched into one statement', async () => {
    const [x] = pairs[2]!;
    const statements: string[] = [];
    const logged = new PrismaClient({
      adapter: prismaAdapter(PrismaPg, pool),
      log: [{ level: 'query', emit: 'event' }],
    });
    logged.$on('query', (e) => statements.push(e.query));
    const client = tenantPrisma(logged);
    try {
      const rows = await runAs(x.tenant, () =>
        Promise.all([
          client.project.findUnique({ where: { id: x.project } }),
          client.project.findUnique({ where: { id: x.project } }),
          client.project.findUnique({ where: { id: randomUUID() } }),
        ]),
      );
      expect(rows.map((r) => r?.tenantId ?? null)).toEqual([x.tenant, x.tenant, null]);
      expect(statements.filter((s) => /from "public"\."projects"/i.test(s)).length).toBe(1);
    } finally {
      await client.$disconnect();
    }
  });

  it('an extended client ($extends) shares the per-tenant batching', async () => {
    const extended = prisma.$extends({ query: { project: { findUnique: ({ args, query }) => query(args) } } });
    for (const [x, y] of pairs.slice(0, 5)) {
      const [rx, ry] = await sameTick(
        () => runAs(x.tenant, () => extended.project.findUnique({ where: { id: x.project } })),
        () => runAs(y.tenant, () => extended.project.findUnique({ where: { id: y.project } })),
      );
      expect([rx?.tenantId, ry?.tenantId]).toEqual([x.tenant, y.tenant]);
    }
  });

  it('tenantPrisma also takes a client already extended ($extends shares the base client’s loader)', async () => {
    const base = new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) });
    const extended = tenantPrisma(base.$extends({ query: { $allOperations: ({ args, query }) => query(args) } }));
    try {
      for (const [x, y] of pairs.slice(0, 5)) {
        const [rx, ry] = await sameTick(
          () => runAs(x.tenant, () => extended.project.findUnique({ where: { id: x.project } })),
          () => runAs(y.tenant, () => base.project.findUnique({ where: { id: y.project } })),
        );
        expect([rx?.tenantId, ry?.tenantId]).toEqual([x.tenant, y.tenant]);
      }
    } finally {
      await base.$disconnect();
    }
  });

  it('all tenants at once, mixing findUnique, batch and interactive transactions, nested writes and raw SQL, stay apart', async () => {
    const seeds = pairs.flat();
    const results = await Promise.all(
      seeds.map((s, i) =>
        runAs(s.tenant, async () => {
          const own = await prisma.project.findUnique({ where: { id: s.project } });
          const other = await prisma.project.findUnique({ where: { id: seeds[(i + 1) % seeds.length]!.project } });
          if (i % 3 === 0)
            await prisma.$transaction([prisma.task.create({ data: { title: 'mix', projectId: s.project } })]);
          else if (i % 3 === 1)
            await prisma.$transaction(async (tx) => {
              await tx.task.create({ data: { title: 'mix', projectId: s.project } });
            });
          else await prisma.project.update({ where: { id: s.project }, data: { tasks: { create: { title: 'mix' } } } });
          const raw = await prisma.$queryRaw<{ tenant_id: string }[]>`select distinct tenant_id from tasks`;
          return { own: own?.tenantId, other, raw: raw.map((r) => r.tenant_id) };
        }),
      ),
    );
    results.forEach((r, i) => {
      expect(r).toEqual({ own: seeds[i]!.tenant, other: null, raw: [seeds[i]!.tenant] });
    });
    const { rows } = await tdb.admin.query<{ tenant_id: string; project_tenant: string }>(
      `select t.tenant_id, p.tenant_id as project_tenant from tasks t join projects p on p.id = t.project_id where t.title = 'mix'`,
    );
    expect(rows.length).toBe(seeds.length);
    for (const row of rows) expect(row.tenant_id).toBe(row.project_tenant);
  });
});
