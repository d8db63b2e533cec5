import { Command } from 'commander';
import { formatDoctorReport, runDoctor } from '../policy/doctor.js';
import { withDatabase, type ConnectionOptions } from './connection.js';

/** `tenantry doctor`: audits the live database; exits 1 when any error-level finding exists. */
export function doctorCommand(globals: () => ConnectionOptions): Command {
  return new Command('doctor')
    .description('audit the database for isolation defects; exits non-zero when any is found')
    .option('--app-role <name>', 'application role (default: the one recorded by install)')
    .option('--schema <names...>', 'schemas to audit (default: the ones recorded by install)')
    .option('--citus', 'also check that the schema would distribute on Citus by tenant column (docs/citus.md)')
    .option('--json', 'print the report as JSON')
    .action(async (flags: { appRole?: string; schema?: string[]; citus?: boolean; json?: boolean }) => {
      const report = await withDatabase(globals(), (db) => runDoctor(db.adminUrl, { appRole: flags.appRole, schemas: flags.schema, citus: flags.citus === true }));
      console.log(flags.json ? JSON.stringify(report, null, 2) : formatDoctorReport(report));
      if (!report.ok) process.exitCode = 1;
    });
}
