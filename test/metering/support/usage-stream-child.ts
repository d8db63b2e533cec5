// A usage stream in its own process, killed by metering-crash.test.ts at a random point. It
// prints `begin <i>` before an item, `ack <i>` once the item's write and usage are durable, and
// `units <n>` once a flush made n more counter units durable.
import { rowsOf, runItem, streamPools, streamRecorder, type StreamConfig } from './usage-stream.js';

const config = JSON.parse(process.env.USAGE_STREAM!) as StreamConfig & { start: number };
const { app, owner } = streamPools(config);
const usage = streamRecorder(owner);
const out = (line: string) => process.stdout.write(`${line}\n`);
out('ready');
let pending = 0;
for (let i = config.start; ; i++) {
  out(`begin ${i}`);
  for (;;) {
    try {
      await runItem(app, usage, config.tenants, i);
      break;
    } catch {
      // a failed item is retried under the same ids and key (the parent only counts acks)
    }
  }
  pending++;
  out(`ack ${i} ${rowsOf(i)}`);
  if (i % 5 === 0) {
    const units = pending;
    await usage.flush().then(
      () => {
        pending -= units;
        out(`units ${units}`);
      },
      () => undefined,
    );
  }
}
