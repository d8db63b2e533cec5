// Rewrites an archive entry by entry (small test archives only: entries are buffered).
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Queryable } from '../../../src/catalog/tenant-catalog.js';
import { SIGNATURE_ENTRY, signArchiveManifest } from '../../../src/lifecycle/export/archive-signature.js';

/**
 * `resign`: sign an edited manifest again with that database's archive key (an attacker holding
 * the key, or a test of the checks behind the signature); without it the old signature is kept.
 */
export async function rewriteArchive(
  from: string,
  to: string,
  edit: (name: string, body: Buffer) => Buffer | undefined,
  resign?: Queryable,
): Promise<void> {
  const extract = tar.extract();
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(to));
  createReadStream(from).pipe(extract as unknown as NodeJS.WritableStream);
  let manifest: Buffer | undefined;
  for await (const entry of extract as unknown as AsyncIterable<NodeJS.ReadableStream & { header: tar.Headers }>) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    let body = edit(entry.header.name, Buffer.concat(chunks));
    if (entry.header.name === 'manifest.json') manifest = body;
    if (entry.header.name === SIGNATURE_ENTRY && body !== undefined && resign && manifest)
      body = Buffer.from(await signArchiveManifest(resign, manifest));
    if (body !== undefined) pack.entry({ name: entry.header.name }, body);
  }
  pack.finalize();
  await written;
}
