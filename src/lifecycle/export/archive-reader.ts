import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { ArchiveError } from './archive-error.js';
import { MANIFEST_ENTRY, MANIFEST_MAX_BYTES, parseManifest, type ArchiveManifest } from './manifest.js';

type Entry = Readable & { header: tar.Headers };

/** An archive error for a failure of tar or gzip: truncated when the data simply ended. */
export function archiveFailure(error: unknown): unknown {
  if (error instanceof ArchiveError) return error;
  const e = error as { code?: string; message?: string } | null;
  const message = e?.message ?? '';
  if (e?.code === 'Z_BUF_ERROR' || /unexpected end/i.test(message))
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
  readonly #file: Readable;
  readonly #entries: AsyncIterator<Entry>;

  private constructor(file: Readable, entries: AsyncIterator<Entry>, manifest: ArchiveManifest, sha: string) {
    this.#file = file;
    this.#entries = entries;
    this.manifest = manifest;
    this.manifestSha256 = sha;
  }

  static async open(file: string): Promise<ArchiveReader> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new InvalidArgumentError(`No archive file at ${file}`, 'file');
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
      return new ArchiveReader(stream, entries, manifest, createHash('sha256').update(text).digest('hex'));
    } catch (error) {
      stream.destroy();
      throw archiveFailure(error);
    }
  }

  /** The next entry, which must be `name` (the manifest's next table). */
  async next(name: string): Promise<Readable> {
    const r = await this.#entries.next().catch((error: unknown) => {
      throw archiveFailure(error);
    });
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
    const r = await this.#entries.next().catch((error: unknown) => {
      throw archiveFailure(error);
    });
    if (!r.done) {
      r.value.resume();
      throw new ArchiveError('ARCHIVE_CORRUPT', 'The archive holds entries its manifest does not list');
    }
  }

  close(): void {
    this.#file.destroy();
  }
}
