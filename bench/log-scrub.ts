/**
 * What scrubbing by value costs per log line (`npm run bench:logs`): a typical line with nothing
 * to scrub (Fastify's "request completed" with tenant fields) and one with PII in its URL.
 */
import { PiiScrubber } from '../src/observe/pii-scrubber.js';

const scrubber = new PiiScrubber();
const LINES = {
  'clean line': JSON.stringify({
    level: 30,
    time: Date.now(),
    pid: 30106,
    hostname: 'vm',
    reqId: 'req-1',
    tenant_id: 'b2df1679-94b0-47bf-aee8-eba332e2bc78',
    request_id: 'req-1',
    actor: 'user:64305931-5a3d-475c-b437-730204797629',
    res: { statusCode: 201 },
    responseTime: 232.315554,
    msg: 'request completed',
  }),
  'line with PII': JSON.stringify({
    level: 30,
    time: Date.now(),
    reqId: 'req-2',
    req: { method: 'POST', url: '/sign-in?email=a%40b.org&card=4539148803436467', remoteAddress: '127.0.0.1' },
    msg: 'incoming request',
  }),
};

const ROUNDS = 200_000;
for (const [name, line] of Object.entries(LINES)) {
  for (let i = 0; i < ROUNDS / 10; i++) scrubber.line(line); // warm up
  const started = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) scrubber.line(line);
  const micros = Number(process.hrtime.bigint() - started) / ROUNDS / 1000;
  console.log(`${name.padEnd(14)} ${micros.toFixed(2)} µs per line`);
}
