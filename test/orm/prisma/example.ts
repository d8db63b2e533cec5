/**
 * The example of docs/prisma.md, run by test/orm/prisma-example.test.ts on a fresh database and
 * typechecked with the rest of the tree. It imports `tenantry` by package name, as an app would;
 * `./generated/client.js` is the client `prisma generate` wrote from ./schema.prisma.
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { runAs, TenantPool } from 'tenantry';
import { prismaAdapter, tenantPrisma } from 'tenantry/prisma';
import { PrismaClient } from './generated/client.js';

/** Where the example connects: the application role's URL and the context secret of `tenantry install`. */
export interface ExampleSettings {
  appUrl: string;
  contextSecret: string;
}

export async function prismaExample(
  { appUrl, contextSecret }: ExampleSettings,
  tenants: { acme: string; globex: string },
  log: (line: string) => void = console.log,
): Promise<void> {
  const { acme, globex } = tenants;
  // once, at start-up: the pool of the application role (no superuser, no BYPASSRLS)
  const pool = new TenantPool({ connectionString: appUrl, contextSecret });
  await pool.assertSafeRole();
  // prismaAdapter: PrismaPg on that pool, refused if it would build a pool of its own;
  // tenantPrisma: Prisma's same-tick batching kept per tenant
  const prisma = tenantPrisma(new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }));
  try {
    // per request: everything inside runAs runs as that tenant (tenant_id filled in by PostgreSQL)
    const launch = await runAs(acme, () =>
      prisma.project.create({
        data: { name: 'Launch', tasks: { create: [{ title: 'Write docs' }, { title: 'Ship' }] } },
        include: { tasks: true },
      }),
    );
    const pitch = await runAs(globex, () => prisma.project.create({ data: { name: 'Pitch' } }));
    log(`acme created "${launch.name}" with ${launch.tasks.length} tasks; globex created "${pitch.name}"`);

    const peek = await runAs(globex, () => prisma.project.findUnique({ where: { id: launch.id } }));
    log(`globex looks up acme's project by its id: ${String(peek)}`);

    // two tenants in the same tick: each findUnique answers with its own tenant's row
    const [own, other] = await Promise.all([
      runAs(acme, () => prisma.project.findUnique({ where: { id: launch.id } })),
      runAs(globex, () => prisma.project.findUnique({ where: { id: pitch.id } })),
    ]);
    log(`same tick: acme gets "${own?.name}", globex gets "${other?.name}"`);

    // an interactive transaction: one connection, one tenant, all or nothing
    const done = await runAs(acme, () =>
      prisma.$transaction(async (tx) => {
        await tx.task.updateMany({ where: { projectId: launch.id, title: 'Write docs' }, data: { done: true } });
        return tx.task.count({ where: { done: true } });
      }),
    );
    log(`acme marked ${done} task done`);

    const refused = await runAs(globex, () =>
      prisma.task.updateMany({ where: { projectId: launch.id }, data: { done: true } }),
    );
    log(`globex tries to close acme's tasks: ${refused.count} changed`);

    const counts = await runAs(
      acme,
      () => prisma.$queryRaw<{ tasks: number }[]>`select count(*)::int as tasks from tasks`,
    );
    log(`raw SQL as acme counts ${counts[0]?.tasks} tasks`);
  } finally {
    await prisma.$disconnect(); // leaves the pool open: it is the app's
    await pool.end();
  }
}
