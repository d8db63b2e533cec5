// Runs docs/prisma.md's example (test/orm/prisma/example.ts) on a fresh database, so a broken
// example fails CI.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createTestDatabase, type TestDatabase } from '../support/test-database.js';
import { prismaExample } from './prisma/example.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
  await tdb.owner.query(readFileSync(new URL('./prisma/tables.sql', import.meta.url), 'utf8'));
});
afterAll(() => tdb?.drop());

it('the example of docs/prisma.md prints what the page says', async () => {
  const lines: string[] = [];
  const tenants = { acme: randomUUID(), globex: randomUUID() };
  await prismaExample({ appUrl: tdb.appUrl, contextSecret: tdb.contextSecret }, tenants, (line) => lines.push(line));
  expect(lines).toEqual([
    'acme created "Launch" with 2 tasks; globex created "Pitch"',
    "globex looks up acme's project by its id: null",
    'same tick: acme gets "Launch", globex gets "Pitch"',
    'acme marked 1 task done',
    "globex tries to close acme's tasks: 0 changed",
    'raw SQL as acme counts 2 tasks',
  ]);
  const { rows } = await tdb.admin.query('select tenant_id, title, done from tasks order by title');
  expect(rows).toEqual([
    { tenant_id: tenants.acme, title: 'Ship', done: false },
    { tenant_id: tenants.acme, title: 'Write docs', done: true },
  ]);
});
