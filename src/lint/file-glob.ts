import path from 'node:path';
import picomatch from 'picomatch';

// One glob dialect for every `allow` option (picomatch's, as ESLint's own config globs): `**` any
// folders, `*` within one path segment, `?` one character, dotfiles included. Patterns are matched
// against the path relative to ESLint's cwd (posix separators) and, for absolute patterns, against
// the absolute path.
const matchers = new Map<string, picomatch.Matcher>();

function matcher(glob: string, options: picomatch.PicomatchOptions): picomatch.Matcher {
  const key = `${options.nocase ? 'i' : ''}:${glob}`;
  let m = matchers.get(key);
  if (!m) matchers.set(key, (m = picomatch(glob, options)));
  return m;
}

/** True when `filename` (absolute, as ESLint gives it) matches one of `globs`. */
export function matchesAnyGlob(filename: string, globs: readonly string[], cwd: string): boolean {
  if (globs.length === 0) return false;
  const absolute = filename.split(path.sep).join('/');
  const relative = path.relative(cwd, filename).split(path.sep).join('/');
  return globs.some((glob) => {
    const pattern = glob.replace(/^\.\//, '');
    return matcher(pattern, { dot: true })(path.isAbsolute(pattern) ? absolute : relative);
  });
}

/** True when `name` (a table, `schema.table`) matches one of `patterns`, case-insensitively, `*` standing for any run of characters. */
export function matchesAnyName(name: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => matcher(p, { dot: true, nocase: true })(name));
}
