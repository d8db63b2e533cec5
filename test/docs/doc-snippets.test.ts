import { parse } from 'libpg-query';
import { describe, expect, it } from 'vitest';
import { checkSnippets, docSnippets } from './doc-snippets.js';

describe('docs snippets', () => {
  it('every ```ts block of docs/*.md compiles against the library (free names as any)', () => {
    const snippets = docSnippets();
    expect(snippets.length).toBeGreaterThan(10);
    const problems = checkSnippets(snippets).map((p) => `${p.where}: ${p.message}`);
    expect(problems).toEqual([]);
    // one TypeScript program over every docs page and the library: past a minute on a loaded machine
  }, 240_000);

  it('every ```sql block of docs/*.md parses as PostgreSQL', async () => {
    const snippets = docSnippets('sql');
    expect(snippets.length).toBeGreaterThan(5);
    const problems: string[] = [];
    for (const snippet of snippets) {
      await parse(snippet.code).catch((error: Error) => problems.push(`${snippet.where}: ${error.message}`));
    }
    expect(problems).toEqual([]);
  });

  it('finds a wrong option, an unknown export and a misspelt method', () => {
    const problems = checkSnippets([
      { where: 'docs/x.md:1', code: `const pool = new TenantPool({ conectionString: 'x' });` },
      { where: 'docs/x.md:10', code: `import { NoSuchThing } from 'tenantry';\nNoSuchThing();` },
      { where: 'docs/x.md:20', code: `const c = new TenantCatalog(ownerPool);\nawait c.suspendd(id);` },
      { where: 'docs/x.md:30', code: `await runAs(tenantId, () => pool.query('select 1'));` },
      // TenantCatalog.list() answers a page, { tenants, nextCursor }, not an array
      {
        where: 'docs/x.md:40',
        code: `const c = new TenantCatalog(ownerPool);\nconst all = await c.list();\nall.map((t) => t.slug);`,
      },
    ]);
    expect(problems.map((p) => p.where)).toEqual(['docs/x.md:2', 'docs/x.md:11', 'docs/x.md:22', 'docs/x.md:43']);
  });
});
