import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

// The README is the npm page: its links are relative to the package root (package.json has no
// repository to resolve them against), so each must name a file the package ships.

const readme = readFileSync('README.md', 'utf8');
const shipped = (JSON.parse(readFileSync('package.json', 'utf8')) as { files: string[] }).files;

describe('README links', () => {
  const links = [...readme.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z]+:/i.test(href));

  it('finds the doc links', () => {
    expect(links.length).toBeGreaterThan(10);
  });

  it('every relative link names an existing file that ships in the package', () => {
    const broken = links.filter(
      (href) =>
        !existsSync(href) ||
        !shipped.some((entry) => href === entry || href.startsWith(`${entry.replace(/\/$/, '')}/`)),
    );
    expect(broken).toEqual([]);
  });
});
