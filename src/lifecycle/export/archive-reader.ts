import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { ArchiveError } from './archive-error.js';
import { SIGNATURE_ENTRY } from './archive-signature.js';
import { MANIFEST_ENTRY, MANIFEST_MAX_BYTES, parseManifest, type ArchiveManifest } from './manifest.js';

type Entry = Readable & { header: tar.Headers };

/** An archive error for a failure of tar or gzip: truncated when the data simply ended. */
export function archiveFailure(error: unknown): unknown {
  if (error instanceof ArchiveError) return error;
  const e = error as { code?: string; message?: string } | null;
  const message = e?.message ?? '';
  // a tar cut inside an entry: the entry closes without its end
  if (e?.code === 'Z_BUF_ERROR' || e?.code === 'ERR_STREAM_PREMATURE_CLOSE' || /unexpected end/i.test(message))
    return new ArchiveError('ARCHIVE_TRUNCATED', 'The archive is truncated: it ends inside a table', { cause: error });
  if (e?.code === 'Z_DATA_ERROR' || /tar|header|gzip|incorrect header|invalid/i.test(message))
    return new ArchiveError('ARCHIVE_CORRUPT', 'The archive is corrupt (not a readable tar of gzip entries)', {
      cause: error,
    });
  return error;
}

/**
 * Reads an archive front to back, one entry at a time (never the whole file): the manifest
 * first, then each table's entry in the manifest's order. tar and gzip failures become
 * ARCHIVE_TRUNCATED or ARCHIVE_CORRUPT.
 */
export class ArchiveReader {
  readonly manifest: ArchiveManifest;
  /** SHA-256 of the manifest's bytes: names this archive in the import journal. */
  readonly manifestSha256: string;
  /** The manifest's bytes, exactly as signed. */
  readonly manifestBytes: Buffer;
  /** The `manifest.sig` entry's text, when the archive has one (archives are signed since export/002). */
  readonly signature: string | undefined;
  readonly #file: Readable;
  readonly #entries: AsyncIterator<Entry>;
  // the entry read while looking for a signature (an unsigned archive's first table)
  #pending: IteratorResult<Entry> | undefined;

  private constructor(
    file: Readable,
    entries: AsyncIterator<Entry>,
    manifest: { parsed: ArchiveManifest; bytes: Buffer; signature: string | undefined },
    pending: IteratorResult<Entry> | undefined,
  ) {
    this.#file = file;
    this.#entries = entries;
    this.manifest = manifest.parsed;
    this.manifestBytes = manifest.bytes;
    this.manifestSha256 = createHash('sha256').update(manifest.bytes).digest('hex');
    this.signature = manifest.signature;
    this.#pending = pending;
  }

  static async open(file: string): Promise<ArchiveReader> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new InvalidArgumentError(`No archive file at ${file}`, 'file');
    // the tar's layout first: tar-stream waits forever for an entry cut short (the file ends in its data)
    await checkTarLayout(file, info.size);
    const stream = createReadStream(file);
    const extract = tar.extract();
    stream.on('error', (error) => extract.destroy(error));
    stream.pipe(extract as unknown as NodeJS.WritableStream);
    const entries = (extract as unknown as AsyncIterable<Entry>)[Symbol.asyncIterator]();
    try {
      const first = await entries.next().catch((error: unknown) => {
        throw archiveFailure(error);
      });
      if (first.done || first.value.header.name !== MANIFEST_ENTRY)
        throw new ArchiveError('ARCHIVE_CORRUPT', `The archive does not begin with ${MANIFEST_ENTRY}`);
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of first.value as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MANIFEST_MAX_BYTES) throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive manifest is too large');
        chunks.push(chunk);
      }
      const text = Buffer.concat(chunks);
      const manifest = parseManifest(text.toString('utf8'));
      const second = await entries.next();
      let signature: string | undefined;
      let pending: IteratorResult<Entry> | undefined = second;
      if (!second.done && second.value.header.name === SIGNATURE_ENTRY) {
        signature = await readSmall(second.value, 1024);
        pending = undefined;
      }
      return new ArchiveReader(stream, entries, { parsed: manifest, bytes: text, signature }, pending);
    } catch (error) {
      stream.destroy();
      throw archiveFailure(error);
    }
  }

  /** The next entry, which must be `name` (the manifest's next table). */
  async next(name: string): Promise<Readable> {
    const r = await this.#nextEntry();
    if (r.done)
      throw new ArchiveError('ARCHIVE_TRUNCATED', `The archive ends before ${name}`, { details: { entry: name } });
    if (r.value.header.name !== name)
      throw new ArchiveError('ARCHIVE_CORRUPT', `The archive holds ${r.value.header.name} where ${name} was expected`, {
        details: { entry: name },
      });
    return r.value;
  }

  /** Checks that nothing follows the last table. */
  async end(): Promise<void> {
    const r = await this.#nextEntry();
    if (!r.done) {
      r.value.resume();
      throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive holds entries its manifest does not list');
    }
  }

  close(): void {
    this.#file.destroy();
  }

  #nextEntry(): Promise<IteratorResult<Entry>> {
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      return Promise.resolve(pending);
    }
    return this.#entries.next().catch((error: unknown) => {
      throw archiveFailure(error);
    });
  }
}

const BLOCK = 512;

/**
 * Walks the tar's headers (a read of 512 bytes per entry, never the data): each header's checksum
 * must hold (ARCHIVE_CORRUPT otherwise) and each entry's data, padded, must end within the file,
 * before the end-of-archive block (ARCHIVE_TRUNCATED otherwise). A cut file is refused here,
 * before anything is locked or written, and in bounded time.
 */
export async function checkTarLayout(file: string, size: number): Promise<void> {
  const fd = await open(file, 'r');
  try {
    const header = Buffer.alloc(BLOCK);
    for (let pos = 0; ;) {
      if (pos + BLOCK > size)
        throw new ArchiveError('ARCHIVE_TRUNCATED', 'The archive is truncated: it ends inside an entry');
      const { bytesRead } = await fd.read(header, 0, BLOCK, pos);
      if (bytesRead !== BLOCK)
        throw new ArchiveError('ARCHIVE_TRUNCATED', 'The archive is truncated: it ends inside an entry');
      if (header.every((b) => b === 0)) return;
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
      const stored = parseInt(
        header
          .toString('latin1', 148, 156)
          .replace(/[\0 ]+$/, '')
          .trim(),
        8,
      );
      if (!Number.isFinite(stored) || stored !== sum)
        throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive is corrupt (not a readable tar of gzip entries)');
      const length = entrySize(header);
      if (length === undefined)
        throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive is corrupt (not a readable tar of gzip entries)');
      pos += BLOCK + Math.ceil(length / BLOCK) * BLOCK;
    }
  } finally {
    await fd.close();
  }
}

/** An entry's size from its header: octal text, or base-256 (a leading 0x80 byte) for large entries. */
function entrySize(header: Buffer): number | undefined {
  if (header[124]! & 0x80) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + header[i]!;
    return Number.isSafeInteger(n) ? n : undefined;
  }
  const text = header
    .toString('latin1', 124, 136)
    .replace(/[\0 ]+$/, '')
    .trim();
  if (!/^[0-7]*$/.test(text)) return undefined;
  return text === '' ? 0 : parseInt(text, 8);
}

async function readSmall(entry: Entry, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of entry as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) throw new ArchiveError('ARCHIVE_CORRUPT', `The archive's ${SIGNATURE_ENTRY} is too large`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
