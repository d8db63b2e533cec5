import { FakePostgresStream } from './support/fake-postgres.js';
import { runFor } from './support/runner.js';
import { VARIANTS } from './support/variants.js';
import { pairPicker } from './support/dataset.js';
const pick = pairPicker({ tenants: 1000, rowsPerTenant: 1000 });
const targets = {
  signedOwnerUrl: 'postgres://fake@fake/fake',
  signedAppUrl: 'postgres://fake@fake/fake',
  unsignedAppUrl: 'postgres://fake@fake/fake',
  contextSecret: 'x'.repeat(48),
  poolExtras: { stream: () => new FakePostgresStream() } as any,
  fakeRoutes: true,
};
const v = VARIANTS[process.argv[2] ?? 'b']!.open(targets, 16, false);
await runFor(v.run, pick, 16, 1);
const out = await runFor(v.run, pick, 16, Number(process.argv[3] ?? 5));
console.log(out.queries, out.errors);
await v.end();
process.exit(0);
