/**
 * The client CPU of RoutedTenantPool's own layer per statement (route look-up, slots, lease,
 * promise), without node-postgres or a server: every TenantPool's query is stubbed with a promise
 * settled on the next turn of the event loop, and the same statements run through a plain
 * TenantPool (stubbed alike) and through a RoutedTenantPool (every tenant on the default route,
 * cached), in shuffled blocks. Prints the medians and the median of the per-block differences.
 * With several trees (worktrees), each is loaded in turn: compare trees by running once per tree.
 *
 *   npx tsx bench/routed-layer-cost.ts --trees=/work/base --blocks=20; npx tsx bench/routed-layer-cost.ts --blocks=20
 */
import { arg } from './support/arg.js';
import { clientCpuUs } from './support/cpu.js';
import { median } from './support/median.js';
import { shuffled } from './support/shuffled.js';
const trees = arg('trees', process.cwd()).split(',');
const blocks = Number(arg('blocks', '20'));
const perBlock = Number(arg('n', '20000'));
const concurrency = Number(arg('concurrency', '16'));

const RESULT = { rows: [{ id: 1 }], rowCount: 1 };
const tenants = Array.from({ length: 1000 }, (_, k) => `00000000-0000-4000-8000-${String(k).padStart(12, '0')}`);

interface Queryable {
  query(text: string, values: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}
interface Run {
  key: string;
  once(): Promise<number>;
  pool: Queryable;
}
const runs: Run[] = [];
for (const tree of trees) {
  const { TenantPool } = (await import(`${tree}/src/data/tenant-pool.ts`)) as {
    TenantPool: (new (config: object) => Queryable) & { prototype: { query: unknown } };
  };
  const { RoutedTenantPool } = (await import(`${tree}/src/tiers/routed-tenant-pool.ts`)) as {
    RoutedTenantPool: new (config: object) => Queryable;
  };
  const { TenantRouter } = (await import(`${tree}/src/tiers/tenant-router.ts`)) as {
    TenantRouter: new (options: object) => { resolve(tenant: string): Promise<unknown> };
  };
  const { runAs } = (await import(`${tree}/src/context/tenant-context.ts`)) as {
    runAs: <T>(tenant: string, fn: () => T) => T;
  };
  // a statement's promise, settled a turn of the event loop later as the fake server answers
  TenantPool.prototype.query = () => new Promise((resolve) => setImmediate(resolve, RESULT));
  const router = new TenantRouter({ pool: { query: () => Promise.resolve({ rows: [] }) } });
  const common = { contextSecret: 'x'.repeat(48), idleTimeoutMillis: 0 };
  const routed = new RoutedTenantPool({
    ...common,
    router,
    clusters: { home: 'postgres://fake@fake/fake' },
    maxConnections: concurrency,
    poolSize: concurrency,
  });
  const plain = new TenantPool({ ...common, connectionString: 'postgres://fake@fake/fake' });
  for (const t of tenants) await router.resolve(t);
  let next = 0;
  const loop = (pool: Queryable) => async () => {
    let count = 0;
    const worker = async () => {
      while (count < perBlock) {
        count++;
        const tenant = tenants[next++ % tenants.length]!;
        await runAs(tenant, () => pool.query('select 1', [next]));
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return count;
  };
  const name = tree.split('/').pop()!;
  runs.push({ key: `${name} routed`, once: loop(routed), pool: routed });
  runs.push({ key: `${name} plain`, once: loop(plain), pool: plain });
}
for (const r of runs) for (let k = 0; k < 3; k++) await r.once(); // warm-up
const us = new Map(runs.map((r) => [r.key, [] as number[]]));
for (let b = 0; b < blocks; b++) {
  for (const r of shuffled(runs)) {
    const cpu0 = clientCpuUs();
    const n = await r.once();
    us.get(r.key)!.push((clientCpuUs() - cpu0) / n);
  }
}
for (const tree of trees) {
  const name = tree.split('/').pop()!;
  const routed = us.get(`${name} routed`)!;
  const plain = us.get(`${name} plain`)!;
  const diff = routed.map((x, i) => x - plain[i]!);
  process.stdout.write(
    `${name}: routed ${median(routed).toFixed(3)} µs, plain ${median(plain).toFixed(3)} µs, routed - plain ${median(diff).toFixed(3)} µs (medians of ${blocks} blocks)\n`,
  );
}
await Promise.all(runs.map((r) => r.pool.end()));
