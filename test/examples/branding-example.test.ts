import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, inject, it } from 'vitest';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');

describe('branding example (docs/branding.md)', () => {
  it('prints what the docs show', async () => {
    const { stdout } = await exec(TSX, [path.resolve('examples/branding/brand.ts')], {
      env: { ...process.env, DATABASE_URL: inject('adminUrl') },
      timeout: 60_000,
    });
    expect(stdout.trimEnd().split('\n')).toEqual([
      'white on #767676: 4.54:1',
      'acme before: Acme (default)',
      'acme saved: change 1, logo image/png 2×2',
      'light grey text → BRAND_INVALID (colors.text)',
      'sender with CR/LF → BRAND_INVALID (emailSenderName)',
      'an SVG logo → BRAND_LOGO_INVALID (logo)',
      'acme now: Acme Rockets',
      'globex: Globex, logo none',
      'rolled back: change 2, source default',
      'history: 2 rollback, 1 set',
    ]);
  }, 90_000);
});
