import { createHmac, timingSafeEqual } from 'node:crypto';

/** How far a receiver should accept a delivery's timestamp from its own clock (replays beyond it fail). */
export const WEBHOOK_TOLERANCE_SECONDS = 300;

/**
 * The signature of a delivery: `v1=` and the hex HMAC-SHA256, keyed by the tenant's webhook
 * secret, over `<timestamp>.<body>` (the timestamp in Unix seconds, the body's exact bytes). It
 * covers the timestamp, so a captured delivery cannot be replayed later with a fresh one.
 */
export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * What a receiver does with a delivery (`webhook-timestamp`, `webhook-signature` headers and the
 * raw body): true when the signature matches and the timestamp is within the tolerance.
 */
export function verifyWebhook(
  secret: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  body: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isSafeInteger(timestamp) || Math.abs(nowSeconds - timestamp) > WEBHOOK_TOLERANCE_SECONDS) return false;
  const want = Buffer.from(signWebhook(secret, timestamp, body));
  const got = Buffer.from(String(headers.signature ?? ''));
  return got.length === want.length && timingSafeEqual(got, want);
}
