// The `tenantry` program with the guard's commands, built like src/cli/main.ts, so the commands
// run as a subprocess before main.ts registers them.
import { Command, CommanderError } from 'commander';
import { TenantryError } from '../../../src/errors/tenantry-error.js';
import { guardCommand } from '../../../src/cli/guard-command.js';
import { scanLogCommand } from '../../../src/cli/scan-log-command.js';
import type { ConnectionOptions } from '../../../src/cli/connection.js';

const program = new Command('tenantry')
  .option('--database-url <url>', 'server to use')
  .option('--dir <path>', 'project-local folder', '.tenantry')
  .exitOverride();
const globals = (): ConnectionOptions => program.opts<ConnectionOptions>();
program.addCommand(guardCommand(globals));
program.addCommand(scanLogCommand(globals));
const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
for (const c of everyCommand(program)) c.exitOverride().showHelpAfterError();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exitCode = error.exitCode === 0 ? 0 : 2;
  else if (error instanceof TenantryError) {
    console.error(`error ${error.code}: ${error.message}`);
    process.exitCode = 1;
  } else {
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
process.exit(process.exitCode ?? 0);
