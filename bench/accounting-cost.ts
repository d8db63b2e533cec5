/**
 * CPU cost of the per-statement accounting that monitoring and fair checkout add to a
 * TenantPool checkout, op by op, in a tight loop (no pool, no network, no PostgreSQL): the part
 * of bench:isolation's b+monitor / b+fair overhead that is the library's own bookkeeping, in ns,
 * steadier on a shared machine than the end-to-end figures (median of 7 repeats of CPU time).
 *
 *   npx tsx bench/accounting-cost.ts [--tenants=1000] [--ops=1000000]
 */
import os from 'node:os';
import { FairCheckout } from '../src/data/fair-checkout.js';
import { TenantActivity } from '../src/data/tenant-activity.js';
import { ActivityTags } from '../src/data/activity-tag.js';
import { TenantDbLimits } from '../src/data/tenant-db-limits.js';
import { tenantIdOf } from './support/dataset.js';
import { clientCpuUs } from './support/cpu.js';
import { vitestProcesses } from './support/report.js';

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const TENANTS = arg('tenants', 1000);
const OPS = arg('ops', 1_000_000);
const tenants = Array.from({ length: TENANTS }, (_, k) => tenantIdOf(k));
let sink = 0;

function nsPerOp(run: (tenant: string) => void): number {
  const samples: number[] = [];
  for (let r = 0; r < 7; r++) {
    const cpu0 = clientCpuUs();
    for (let i = 0; i < OPS; i++) run(tenants[i % TENANTS]!);
    samples.push(((clientCpuUs() - cpu0) * 1000) / OPS);
  }
  samples.sort((a, b) => a - b);
  return samples[3]!;
}

const fair = new FairCheckout(16, 12);
const activity = new TenantActivity();
const limits = new TenantDbLimits({
  plans: { free: { statementTimeoutMs: 5000, lockTimeoutMs: 1000, workMem: '4MB' } },
  defaultPlan: 'free',
});
const tags = new ActivityTags();

const cases: Array<[string, (t: string) => void]> = [
  ['empty loop (tenant pick)', (t) => void (sink += t.length)],
  [
    '2 × performance.now() (activity, idle connection: statement time only)',
    () => {
      sink += performance.now() + performance.now();
    },
  ],
  [
    '4 × performance.now() (activity, a checkout that may wait: its wait and the statement time)',
    () => {
      sink += performance.now() + performance.now() + performance.now() + performance.now();
    },
  ],
  [
    'TenantActivity checkedOut + statement + checkedIn',
    (t) => {
      activity.checkedOut(t, 0);
      activity.statement(t, 0.2, 1, undefined);
      activity.checkedIn(t);
    },
  ],
  [
    'FairCheckout tryAcquire + release (fair, uncontended)',
    (t) => {
      fair.tryAcquire(t, 1, Infinity);
      fair.release(t);
    },
  ],
  ['dbLimits.limitsOf (fair: weight, cap)', (t) => void (sink += limits.limitsOf(t).weight)],
  ['ActivityTags.tagOf (activityTag, cached)', (t) => void (sink += tags.tagOf(t).length)],
];

process.stdout.write(
  `# accounting cost per op — ${new Date().toISOString()}; ${TENANTS} tenants, ${OPS} ops × 7 repeats (median); load ${os.loadavg()[0]!.toFixed(2)}, vitest processes ${vitestProcesses()}\n\n| op | ns/op (CPU) |\n|:--|---:|\n`,
);
for (const [name, run] of cases) {
  for (let i = 0; i < 200_000; i++) run(tenants[i % TENANTS]!); // warm-up (JIT)
  process.stdout.write(`| ${name} | ${nsPerOp(run).toFixed(1)} |\n`);
}
process.stdout.write(`\nload ${os.loadavg()[0]!.toFixed(2)} at end${sink === -1 ? '' : ''}\n`);
