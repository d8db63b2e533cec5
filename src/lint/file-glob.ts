import path from 'node:path';

// One glob dialect for every `allow` option: `**` any folders, `*` within one path segment,
// `?` one character. Patterns are matched against the path relative to ESLint's cwd (posix
// separators) and, for absolute patterns, against the absolute path.
const cache = new Map<string, RegExp>();

function toRegExp(glob: string): RegExp {
  let re = cache.get(glob);
  if (re) return re;
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` matches zero or more whole folders; a trailing `**` anything
      if (glob[i + 2] === '/') {
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`^${out}$`);
  cache.set(glob, re);
  return re;
}

/** True when `filename` (absolute, as ESLint gives it) matches one of `globs`. */
export function matchesAnyGlob(filename: string, globs: readonly string[], cwd: string): boolean {
  if (globs.length === 0) return false;
  const absolute = filename.split(path.sep).join('/');
  const relative = path.relative(cwd, filename).split(path.sep).join('/');
  return globs.some((glob) => {
    const pattern = glob.replace(/^\.\//, '');
    return toRegExp(pattern).test(path.isAbsolute(pattern) ? absolute : relative);
  });
}

/** True when `name` matches one of `patterns`, where `*` stands for any run of characters. */
export function matchesAnyName(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) =>
    new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i').test(name),
  );
}
