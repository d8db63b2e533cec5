import { chmod, mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Mode of every file Tenantry writes under its project folder: secrets live there. */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Writes `content` to `file` readable by its owner only, atomically (a temporary file renamed
 * over it): a crash leaves the old file or the new one, never half of one, and the mode is set
 * before the content exists, so no other user reads it in between.
 */
export async function writePrivateFile(file: string, content: string): Promise<void> {
  const temporary = `${file}.${process.pid}.${Date.now().toString(36)}.tmp`;
  await writeFile(temporary, content, { mode: PRIVATE_FILE_MODE, flag: 'wx' });
  await chmod(temporary, PRIVATE_FILE_MODE); // a umask never widens 0600, but a pre-existing ACL could
  await rename(temporary, file);
}

/**
 * Makes `dir` (created when missing) private: mode 0700, and every file directly in it 0600
 * (folders in it 0700), except `keep` (the PostgreSQL data folder, which PostgreSQL keeps
 * private itself and which belongs to the postgres system user when running as root).
 *
 * With `embedded` (the folder holds an embedded server's data) and as root, the server runs as
 * the `postgres` system user, which must pass through `dir` to reach its data folder: then `dir`
 * is 0711 (others may traverse it, never list it; every file in it is still 0600 root's, and the
 * data folder 0700 postgres'). Without an embedded server nobody else needs it: 0700.
 */
export async function makePrivateDir(
  dir: string,
  keep: readonly string[] = [],
  { embedded = true }: { embedded?: boolean } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, embedded && process.getuid?.() === 0 ? 0o711 : 0o700);
  const kept = new Set(keep.map((k) => path.resolve(k)));
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (kept.has(full)) continue;
    if (entry.isDirectory()) await chmod(full, 0o700).catch(() => undefined);
    else if (entry.isFile()) await chmod(full, PRIVATE_FILE_MODE).catch(() => undefined);
  }
}

/** The permission bits of `file` (for tests and doctor-like checks). */
export async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}
