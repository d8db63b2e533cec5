#!/usr/bin/env node
// The installed package runs its compiled CLI. In a source checkout that was never built
// (`npx tenantry` right after `npm ci`) there is no dist/: run the TypeScript source through tsx
// instead of failing with a module-not-found stack trace.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);

if (existsSync(compiled)) {
  await import(compiled.href);
} else if (existsSync(source)) {
  const { spawn } = await import('node:child_process');
  const { createRequire } = await import('node:module');
  let tsx;
  try {
    tsx = createRequire(import.meta.url).resolve('tsx');
  } catch {
    process.stderr.write(
      'tenantry: this checkout is not built and tsx is not installed: run `npm ci`, or `npm run build`\n',
    );
    process.exit(1);
  }
  const child = spawn(
    process.execPath,
    ['--import', tsx, '--conditions=tenantry-source', fileURLToPath(source), ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else {
  process.stderr.write('tenantry: dist/cli/main.js is missing: reinstall the package\n');
  process.exit(1);
}
