import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { CLIENT_STATUS_ERRORS, type ErrorAnswer } from './error-handler.js';

/**
 * Fastify's `clientErrorHandler` option: what Node's HTTP parser refuses before Fastify sees a
 * request (headers too large, a malformed request line, a request that took too long) is answered
 * on the socket in the API's `{ error: { code, message } }` shape, never echoing the request, and
 * without a body when the request was a HEAD. The connection is closed after (the parser's state
 * is unknown).
 */
export function clientErrorHandler(error: Error & { code?: string; rawPacket?: unknown }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const answer = answerOf(error.code);
  if (socket.writable) {
    const body = JSON.stringify({ error: { code: answer.code, message: answer.message } });
    const head = isHead(error.rawPacket);
    socket.end(
      `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status]}\r\n` +
        'Content-Type: application/json; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        (head ? '' : body),
    );
  }
  socket.destroySoon();
}

function answerOf(code: string | undefined): ErrorAnswer {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return CLIENT_STATUS_ERRORS[408]!;
  if (code === 'HPE_HEADER_OVERFLOW') return CLIENT_STATUS_ERRORS[431]!;
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return CLIENT_STATUS_ERRORS[413]!;
  return CLIENT_STATUS_ERRORS[400]!;
}

// the parser failed, so the method was never parsed: read it from the bytes it had received
function isHead(raw: unknown): boolean {
  return Buffer.isBuffer(raw) && raw.subarray(0, 5).toString('latin1') === 'HEAD ';
}
