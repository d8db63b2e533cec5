/**
 * docs/logging.md as one runnable file: a pino logger whose lines name their tenant (no child
 * logger passed around) and carry no personal data, whatever the code logs.
 *
 *   npx tsx --conditions=tenantry-source examples/logging/logging.ts     # in this repository
 *   npx tsx examples/logging/logging.ts                                  # in your app
 */
import { pino } from 'pino';
import { runAs } from 'tenantry';
import { runWithLogContext, tenantLogOptions } from 'tenantry/pino';

const acme = '0b6f9c5e-1f55-4c1b-9d5a-5d2b8f0c7a11';
const globex = '7e0c2d4a-93b1-4f0e-8a6c-2c9e1b5d3f22';

// keep your redact paths (a secret is best never logged); scrubbing by value catches the rest
// your options go in (not spread over the result): tenantLogOptions composes its mixin and hooks with yours
const logger = pino(
  tenantLogOptions({
    scrub: { classes: { ip: false } },
    redact: ['req.headers.authorization'],
    base: undefined,
    timestamp: false,
  }),
);

// somewhere deep in the code, with the module's logger
function exportRecordings(requestedBy: string): void {
  logger.info({ requestedBy }, `export mailed to ${requestedBy}`);
}

logger.info('starting'); // outside any tenant: no tenant_id
await Promise.all([
  runAs(acme, () =>
    runWithLogContext({ requestId: 'req-1', actor: 'user:42' }, async () => exportRecordings('ann@acme.example')),
  ),
  runAs(globex, async () => {
    logger.warn({ card: '4111 1111 1111 1111', order: '4111111111111112', from: '203.0.113.7' }, 'payment failed');
  }),
]);
