// Copies every feature's migrations folder (src/**/migrations/*.sql) next to its compiled code in
// the build's output folder (default dist/, or the first argument), where
// src/policy/library-migrations.ts finds them at run time: tsc copies no .sql.
import { cpSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const outDir = process.argv[2] ?? 'dist';

function walk(dir) {
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (!statSync(full).isDirectory()) continue;
    if (entry === 'migrations') {
      const target = path.join(outDir, path.relative('src', full));
      cpSync(full, target, { recursive: true, filter: (f) => statSync(f).isDirectory() || f.endsWith('.sql') });
    } else walk(full);
  }
}
walk('src');
