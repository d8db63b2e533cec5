import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { PLAN_NAMES, SIGN_UP_PLANS } from '../../app/plans.js';
import { PLUGIN_PLANS } from '../../app/plugins/registry.js';

// Findings of the tenant-lifecycle try-out (issue 11) about the docs' text.
describe('docs of the try-out findings', () => {
  it('the graphile-worker example gives its pool an error handler (else graphile-worker warns, and an idle error crashes)', async () => {
    const text = await readFile('docs/jobs.md', 'utf8');
    const example = text.slice(text.indexOf('## graphile-worker'));
    const code = example.slice(example.indexOf('```ts'), example.indexOf('```', example.indexOf('```ts') + 5));
    expect(code).toMatch(/ownerPool\.on\('error',/);
  });

  it("plugins.md names the reference server's plans as app/plans.ts has them", async () => {
    const text = await readFile('docs/plugins.md', 'utf8');
    const section = text.slice(text.indexOf('## Reference server'));
    const part = section.slice(0, section.indexOf('\n- **transcripts**'));
    for (const plan of PLAN_NAMES) expect(part).toContain(`\`${plan}\``);
    for (const plan of SIGN_UP_PLANS) expect(part).toMatch(new RegExp(`sign-up[^.]*\`${plan}\``, 's'));
    expect(part).not.toMatch(/`pro`/);
    expect(Object.keys(PLUGIN_PLANS).every((p) => (PLAN_NAMES as readonly string[]).includes(p))).toBe(true);
  });
});
