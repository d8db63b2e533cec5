/**
 * Client cost A/B between worktrees, in one process: the same client-cost variants (fake server,
 * no PostgreSQL: bench/support/client-cost.ts) loaded from each tree given, run in short blocks
 * in a shuffled order, so the load of a shared machine hits every tree alike. Prints, per tree
 * and variant, the median and least µs of client CPU per statement over the blocks, the median of
 * the per-block ratios to the first tree, and to b of the same tree.
 *
 *   git worktree add --detach ../base main
 *   npx tsx bench/client-cost-ab.ts --trees=/work/base,/work/mine --variants=b,b-routed --blocks=60 --block=0.2
 *
 * Both trees' code share node_modules (pg, pg-pool), which then see two TenantPool classes: fine
 * for a comparison, but confirm a result with bench/isolation.ts --client-cost-only in each tree.
 */
import { arg } from './support/arg.js';
import { clientCpuUs } from './support/cpu.js';
import { median } from './support/median.js';
import { shuffled } from './support/shuffled.js';
import type { OpenVariant, VariantInfo, VariantTargets } from './support/variants.js';
import type { runFor as RunFor } from './support/runner.js';

const trees = arg('trees', process.cwd()).split(',');
const variants = arg('variants', 'b,b-routed').split(',');
const blocks = Number(arg('blocks', '40'));
const block = Number(arg('block', '0.25'));
const concurrency = Number(arg('concurrency', '16'));

const treeName = (tree: string) => tree.split('/').pop()!;

interface Run {
  key: string;
  open: OpenVariant;
  runFor: typeof RunFor;
}
const runs: Run[] = [];
let pick: (() => { tenant: string; id: number }) | undefined;
for (const tree of trees) {
  const { VARIANTS } = (await import(`${tree}/bench/support/variants.ts`)) as {
    VARIANTS: Record<string, VariantInfo>;
  };
  const { FakePostgresStream } = (await import(`${tree}/bench/support/fake-postgres.ts`)) as {
    FakePostgresStream: new () => unknown;
  };
  const { runFor } = (await import(`${tree}/bench/support/runner.ts`)) as { runFor: typeof RunFor };
  const { pairPicker } = (await import(`${tree}/bench/support/dataset.ts`)) as {
    pairPicker: (shape: { tenants: number; rowsPerTenant: number }) => () => { tenant: string; id: number };
  };
  pick ??= pairPicker({ tenants: Number(arg('tenants', '1000')), rowsPerTenant: 1000 });
  const targets: VariantTargets = {
    signedOwnerUrl: 'postgres://fake@fake/fake',
    signedAppUrl: 'postgres://fake@fake/fake',
    unsignedAppUrl: 'postgres://fake@fake/fake',
    contextSecret: 'x'.repeat(48),
    poolExtras: { stream: () => new FakePostgresStream() } as unknown as import('pg').PoolConfig,
    fakeRoutes: true,
  };
  for (const v of variants) {
    const info = VARIANTS[v];
    if (!info) throw new Error(`unknown variant ${v}`);
    runs.push({ key: `${treeName(tree)} ${v}`, open: info.open(targets, concurrency, false), runFor });
  }
}
for (const r of runs) await r.runFor(r.open.run, pick!, concurrency, 1); // warm-up
const perBlock = new Map(runs.map((r) => [r.key, [] as number[]]));
for (let b = 0; b < blocks; b++) {
  for (const r of shuffled(runs)) {
    const cpu0 = clientCpuUs();
    const out = await r.runFor(r.open.run, pick!, concurrency, block);
    if (out.errors || out.wrongRows)
      throw new Error(`${r.key}: ${out.errors} errors, ${out.wrongRows} wrong`, { cause: out.firstError });
    perBlock.get(r.key)!.push((clientCpuUs() - cpu0) / out.queries);
  }
}
const first = treeName(trees[0]!);
for (const [key, xs] of perBlock) {
  const [tree, v] = key.split(' ') as [string, string];
  const ofFirst = perBlock.get(`${first} ${v}`)!;
  const ofB = v === 'b' ? undefined : perBlock.get(`${tree} b`);
  const ratio = (ys: number[]) => median(xs.map((x, i) => x / ys[i]!)).toFixed(3);
  process.stdout.write(
    `${key.padEnd(28)} median ${median(xs).toFixed(2)} µs  least ${Math.min(...xs).toFixed(2)} µs  × ${first} ${ratio(ofFirst)}${ofB ? `  × b ${ratio(ofB)}` : ''}\n`,
  );
}
await Promise.all(runs.map((r) => r.open.end()));
