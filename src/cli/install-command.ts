import { Command } from 'commander';
import { installSql, type InstallOptions } from '../policy/install-sql.js';
import { install } from '../policy/installer.js';
import { withDatabase, type ConnectionOptions } from './connection.js';

interface InstallFlags {
  dryRun?: boolean;
  appRole?: string;
  ownerRole?: string;
  supportRole?: string;
  schema?: string[];
  unsigned?: boolean;
  eventTrigger: boolean;
}

/** `tenantry install`: roles, catalog, registry, deny-by-default, private schema. Idempotent. */
export function installCommand(globals: () => ConnectionOptions): Command {
  return new Command('install')
    .description('install the isolation layer into the database (idempotent)')
    .option('--dry-run', 'print the SQL instead of running it (passwords and secrets masked)')
    .option('--app-role <name>', 'role the application connects as', process.env.TENANTRY_APP_ROLE ?? 'tenantry_app')
    .option('--owner-role <name>', 'role that owns tables and runs DDL', process.env.TENANTRY_OWNER_ROLE ?? 'tenantry_owner')
    .option('--support-role <name>', 'read-only role for audited staff reads across tenants (not created when omitted)', process.env.TENANTRY_SUPPORT_ROLE)
    .option('--schema <names...>', 'schemas holding application tables', ['public'])
    .option('--unsigned', 'unsigned tenant context: faster, but injected SQL can choose its tenant (see docs/security.md)')
    .option('--no-event-trigger', 'skip the event trigger that locks new tables (it needs a superuser)')
    .action(async (flags: InstallFlags) => {
      const options: InstallOptions = {
        appRole: flags.appRole,
        ownerRole: flags.ownerRole,
        supportRole: flags.supportRole,
        dataSchemas: flags.schema,
        contextMode: flags.unsigned ? 'unsigned' : 'signed',
        eventTrigger: flags.eventTrigger,
      };
      if (flags.dryRun) {
        const masked = installSql({ ...options, appPassword: '********', ownerPassword: '********', ...(options.supportRole ? { supportPassword: '********' } : {}) });
        process.stdout.write(`${masked}-- then, in signed mode: the context secret's HMAC pads are stored in tenantry_private.context_key (not printed)\n`);
        return;
      }
      await withDatabase(globals(), async (db) => {
        await install(db.adminUrl, {
          ...options,
          appPassword: db.appPassword,
          ownerPassword: db.ownerPassword,
          ...(options.supportRole ? { supportPassword: options.supportRole === db.supportRole ? db.supportPassword : undefined } : {}),
          contextSecret: db.contextSecret,
        });
        console.log(`tenantry installed (${options.contextMode} context) for app role ${options.appRole}, owner role ${options.ownerRole}`);
      });
    });
}
