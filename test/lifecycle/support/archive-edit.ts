// Rewrites an archive entry by entry (small test archives only: entries are buffered).
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export async function rewriteArchive(
  from: string,
  to: string,
  edit: (name: string, body: Buffer) => Buffer | undefined,
): Promise<void> {
  const extract = tar.extract();
  const pack = tar.pack();
  const written = pipeline(pack, createWriteStream(to));
  createReadStream(from).pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract as unknown as AsyncIterable<NodeJS.ReadableStream & { header: tar.Headers }>) {
    const chunks: Buffer[] = [];
    for await (const c of entry as AsyncIterable<Buffer>) chunks.push(c);
    const body = edit(entry.header.name, Buffer.concat(chunks));
    if (body !== undefined) pack.entry({ name: entry.header.name }, body);
  }
  pack.finalize();
  await written;
}
