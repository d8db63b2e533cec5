// tenantry/express on Express 4 (package.json's peer range is ^4.21.0 || ^5.0.0): the Express
// adapter's own tests, run again with `express` resolved to Express 4 (the devDependency
// `express4`, npm:express@4). Importing the test file registers its tests in this file, so
// tests added there run on both versions.
import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';

// (`as string`: Express 4 has no types of its own here; the adapter is typed against @types/express 5)
vi.mock('express', () => import('express4' as string));

describe('the express the adapter tests get in this file', () => {
  it('is Express 4', async () => {
    const version = (createRequire(import.meta.url)('express4/package.json') as { version: string }).version;
    expect(version).toMatch(/^4\./);
    const express = (await import('express')).default as unknown as { application: object };
    const express4 = ((await import('express4' as string)) as { default: { application: object } }).default;
    expect(express.application).toBe(express4.application);
  });
});

await import('./express-adapter.test.js');
