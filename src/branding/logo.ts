import { createHash } from 'node:crypto';
import { BrandLogoInvalidError } from './branding-errors.js';

/** The image types a logo may have. SVG is refused (see {@link inspectLogo}). */
export type LogoContentType = 'image/png' | 'image/jpeg' | 'image/webp';

/** What a checked logo is. */
export interface LogoFacts {
  contentType: LogoContentType;
  /** SHA-256 of the bytes (hex): the logo's identity, its ETag, how the history names it. */
  sha256: string;
  size: number;
  width: number;
  height: number;
}

/** Limits of {@link inspectLogo}. */
export interface LogoLimits {
  /** Bytes (default 256 KiB). */
  maxBytes?: number;
  /** Pixels per side (default 2048). */
  maxSide?: number;
}

export const DEFAULT_LOGO_MAX_BYTES = 256 * 1024;
export const DEFAULT_LOGO_MAX_SIDE = 2048;

/**
 * Checks a logo by its content, never by its name or a declared type: the first bytes must be a
 * PNG, JPEG or WebP signature, the header must carry dimensions within `maxSide`, and the whole
 * within `maxBytes`. A `declared` type (an upload's Content-Type) must agree with the bytes.
 *
 * SVG is refused outright: it is a document that can carry scripts, event handlers, external
 * references and CSS, and a logo served from the tenant's own origin would run them there.
 * Sanitising it safely needs a full XML/DOM sanitiser kept up to date against a moving set of
 * bypasses; a raster image needs none of that, and a browser only decodes it.
 *
 * The dimension parsers are written here (a few header fields of three formats) rather than
 * pulled from an image library: we read sizes only, never decode pixels.
 */
export function inspectLogo(bytes: Uint8Array, options: LogoLimits & { declared?: string } = {}): LogoFacts {
  const maxBytes = options.maxBytes ?? DEFAULT_LOGO_MAX_BYTES;
  const maxSide = options.maxSide ?? DEFAULT_LOGO_MAX_SIDE;
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new BrandLogoInvalidError('the image is empty');
  if (bytes.length > maxBytes) throw new BrandLogoInvalidError(`the image is larger than ${maxBytes} bytes`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const found = sniff(buf);
  if (!found) {
    const head = buf.subarray(0, 512).toString('latin1').trimStart().toLowerCase();
    if (head.startsWith('<svg') || head.startsWith('<?xml') || head.includes('<svg'))
      throw new BrandLogoInvalidError('SVG is not accepted (it can carry scripts); upload a PNG, JPEG or WebP');
    throw new BrandLogoInvalidError('the image must be a PNG, JPEG or WebP (checked by its content)');
  }
  if (options.declared !== undefined) {
    const declared = options.declared.split(';')[0]!.trim().toLowerCase();
    if (declared !== found.contentType)
      throw new BrandLogoInvalidError(`the content is ${found.contentType}, not the declared type`);
  }
  if (!endsWhereItSays(buf, found.contentType))
    throw new BrandLogoInvalidError('the image does not end where its format says (data after its end, or truncated)');
  if (!found.width || !found.height) throw new BrandLogoInvalidError('the image header has no dimensions');
  if (found.width > maxSide || found.height > maxSide)
    throw new BrandLogoInvalidError(`the image must be at most ${maxSide}×${maxSide} pixels`);
  return {
    contentType: found.contentType,
    sha256: createHash('sha256').update(buf).digest('hex'),
    size: buf.length,
    width: found.width,
    height: found.height,
  };
}

const PNG_IEND = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/**
 * True when the bytes end exactly where the format's own end marker says: PNG's IEND chunk, JPEG's
 * EOI marker, WebP's RIFF length. Anything appended (another file: a zip, HTML, a script) would be
 * served from the tenant's origin with the logo, so a polyglot is refused rather than stored.
 */
function endsWhereItSays(b: Buffer, type: LogoContentType): boolean {
  if (type === 'image/png')
    return b.length >= 8 + PNG_IEND.length && b.subarray(b.length - PNG_IEND.length).equals(PNG_IEND);
  if (type === 'image/jpeg') return b.length >= 4 && b[b.length - 2] === 0xff && b[b.length - 1] === 0xd9;
  // RIFF: the size field counts what follows it; chunks are padded to even lengths
  const riff = b.readUInt32LE(4) + 8;
  return riff === b.length || riff + (riff % 2) === b.length;
}

interface Sniffed {
  contentType: LogoContentType;
  width: number;
  height: number;
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function sniff(b: Buffer): Sniffed | undefined {
  // PNG: signature, then the IHDR chunk first (length 13): width, height as big-endian uint32
  if (b.length >= 24 && b.subarray(0, 8).equals(PNG)) {
    if (b.toString('latin1', 12, 16) !== 'IHDR') return { contentType: 'image/png', width: 0, height: 0 };
    return { contentType: 'image/png', width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }
  // JPEG: SOI then markers; a start-of-frame (SOF0-15 but DHT, JPG, DAC) holds height, width
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
    let at = 2;
    while (at + 9 < b.length) {
      if (b[at] !== 0xff) break;
      const marker = b[at + 1]!;
      if (marker === 0xff) {
        at++; // fill byte
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        at += 2;
        continue;
      }
      const length = b.readUInt16BE(at + 2);
      if (length < 2) break;
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
        return { contentType: 'image/jpeg', height: b.readUInt16BE(at + 5), width: b.readUInt16BE(at + 7) };
      at += 2 + length;
    }
    return { contentType: 'image/jpeg', width: 0, height: 0 };
  }
  // WebP: RIFF....WEBP, then a VP8 (lossy), VP8L (lossless) or VP8X (extended) chunk
  if (b.length >= 30 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP') {
    const chunk = b.toString('latin1', 12, 16);
    if (chunk === 'VP8X')
      return { contentType: 'image/webp', width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) };
    if (chunk === 'VP8L' && b[20] === 0x2f) {
      const bits = b.readUInt32LE(21);
      return { contentType: 'image/webp', width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
    }
    if (chunk === 'VP8 ' && b[23] === 0x9d && b[24] === 0x01 && b[25] === 0x2a)
      return { contentType: 'image/webp', width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
    return { contentType: 'image/webp', width: 0, height: 0 };
  }
  return undefined;
}
