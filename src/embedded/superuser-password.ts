import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { writePrivateFile } from './private-files.js';

/** The password every embedded data folder made before passwords were generated per folder had. */
export const LEGACY_SUPERUSER_PASSWORD = 'tenantry-embedded';

/** Name of the file, inside the data folder, holding its superuser password (mode 0600). */
export const SUPERUSER_PASSWORD_FILE = 'tenantry-superuser.json';

interface PasswordFile {
  /** The password the superuser has (or is about to get). */
  password: string;
  /** The throwaway password initdb was given, until it was replaced by `password`. */
  initial?: string;
}

/** A new random password (256 bits, URL-safe so it can stand in a connection string as is). */
export function randomPassword(): string {
  return randomBytes(32).toString('base64url');
}

/** Reads the data folder's password file; undefined when it has none (a folder made before them). */
export async function readSuperuserPassword(dataDir: string): Promise<PasswordFile | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path.join(dataDir, SUPERUSER_PASSWORD_FILE), 'utf8')) as PasswordFile;
    return typeof parsed.password === 'string' && parsed.password !== '' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Records the data folder's superuser password (0600, atomically). */
export function writeSuperuserPassword(dataDir: string, file: PasswordFile): Promise<void> {
  return writePrivateFile(path.join(dataDir, SUPERUSER_PASSWORD_FILE), JSON.stringify(file) + '\n');
}

/**
 * Makes sure the running server's superuser has the folder's recorded password, and returns it.
 * A folder without a password file (made by an earlier version, with the constant password)
 * gets a new random one. The new password is recorded BEFORE the role is changed, and the
 * old candidates (initdb's throwaway, the legacy constant) are tried whenever the recorded one
 * is refused: a crash between the two steps never locks the folder out.
 */
export async function ensureSuperuserPassword(options: {
  dataDir: string;
  port: number;
  user: string;
}): Promise<string> {
  let file = await readSuperuserPassword(options.dataDir);
  if (file === undefined) {
    file = { password: randomPassword(), initial: LEGACY_SUPERUSER_PASSWORD };
    await writeSuperuserPassword(options.dataDir, file);
  }
  if (await canConnect(options, file.password)) {
    if (file.initial !== undefined) await writeSuperuserPassword(options.dataDir, { password: file.password });
    return file.password;
  }
  for (const candidate of new Set([file.initial, LEGACY_SUPERUSER_PASSWORD])) {
    if (candidate === undefined) continue;
    const client = await connectAs(options, candidate).catch(() => undefined);
    if (!client) continue;
    try {
      // ALTER ROLE … PASSWORD takes no parameter: the password is URL-safe base64, quoted as a literal
      await client.query(
        `alter role ${client.escapeIdentifier(options.user)} password ${client.escapeLiteral(file.password)}`,
      );
    } finally {
      await client.end().catch(() => undefined);
    }
    await writeSuperuserPassword(options.dataDir, { password: file.password });
    return file.password;
  }
  throw new Error(
    `The superuser password recorded in ${path.join(options.dataDir, SUPERUSER_PASSWORD_FILE)} is refused by the server`,
  );
}

async function canConnect(options: { port: number; user: string }, password: string): Promise<boolean> {
  const client = await connectAs(options, password).catch((error: unknown) => {
    // 28P01 invalid_password: try the other candidates; anything else is a real failure
    if ((error as { code?: string }).code === '28P01') return undefined;
    throw error;
  });
  await client?.end().catch(() => undefined);
  return client !== undefined;
}

async function connectAs(options: { port: number; user: string }, password: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: '127.0.0.1',
    port: options.port,
    user: options.user,
    password,
    database: 'postgres',
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => undefined); // a server going away while we talk: the query rejects
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}
