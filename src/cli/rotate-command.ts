import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import pg from 'pg';
import { rotateContextSecret, rotatePassword } from '../policy/rotation.js';
import { rotateContextSecretEverywhere } from '../tiers/rotate-everywhere.js';
import { withDatabase, type ConnectionOptions } from './connection.js';
import { withClusters } from './migrate-command.js';

interface SecretFlags {
  overlap: number;
  everywhere?: boolean;
  clusters?: string;
}

const seconds = (raw: string): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 604_800) throw new CommanderArgumentError('whole seconds from 0 to 604800');
  return n;
};

/** Reads a new secret from the environment (never from the command line, where `ps` shows it). */
function fromEnv(cmd: Command, name: string): string {
  const value = process.env[name];
  if (!value) cmd.error(`Set ${name} to the new value (it is read from the environment, never from arguments)`);
  return value;
}

/**
 * `tenantry rotate`: change the context secret (with an overlap in which the old one still
 * verifies) or a role's password. `install` never changes either once set.
 */
export function rotateCommand(globals: () => ConnectionOptions): Command {
  const rotate = new Command('rotate').description(
    'rotate the context secret or a role password (install never changes them once set)',
  );
  rotate
    .command('context-secret')
    .description(
      'make TENANTRY_NEW_CONTEXT_SECRET the signed-mode key; the current one keeps verifying for --overlap seconds: roll the app over to the new secret within it',
    )
    .option('--overlap <seconds>', 'how long values signed with the old secret still verify', seconds, 900)
    .option('--everywhere', 'in every database the catalog knows (each stores its own copy of the key)')
    .option('--clusters <json>', "with --everywhere: other clusters' superuser URLs (default: TENANTRY_CLUSTERS)")
    .action(async (flags: SecretFlags, cmd: Command) => {
      const secret = fromEnv(cmd, 'TENANTRY_NEW_CONTEXT_SECRET');
      if (flags.everywhere) {
        const report = await withClusters(
          globals(),
          flags,
          (catalog, clusters) =>
            rotateContextSecretEverywhere({ catalog, clusters, secret, overlapSeconds: flags.overlap }),
          'admin',
        );
        for (const d of report.databases)
          console.log(
            `${d.ok ? 'ok    ' : 'FAILED'} ${d.cluster}/${d.database}${d.ok ? (d.rotated ? '' : ' (already current)') : `: ${d.error}`}`,
          );
        if (!report.ok) process.exitCode = 1;
        return;
      }
      await withDatabase(globals(), async (db) => {
        const admin = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry rotate' });
        await admin.connect();
        try {
          const r = await rotateContextSecret(admin, secret, { overlapSeconds: flags.overlap });
          console.log(
            r.rotated
              ? `context secret rotated; the previous one verifies until ${r.previousUntil!.toISOString()}: restart the app with the new secret before then`
              : 'context secret already current: nothing changed',
          );
        } finally {
          await admin.end();
        }
      });
    });
  rotate
    .command('password')
    .description("set TENANTRY_NEW_PASSWORD as the role's password (open connections stay; new ones need it at once)")
    .requiredOption('--role <role>', 'app, owner or support (the roles install recorded), or a role name')
    .action(async (flags: { role: string }, cmd: Command) => {
      const password = fromEnv(cmd, 'TENANTRY_NEW_PASSWORD');
      await withDatabase(globals(), async (db) => {
        const admin = new pg.Client({ connectionString: db.adminUrl, application_name: 'tenantry rotate' });
        await admin.connect();
        try {
          let role = flags.role;
          if (['app', 'owner', 'support'].includes(role)) {
            const { rows } = await admin.query<{ value: string }>(
              `select value from tenantry.meta where key = $1 || '_role'`,
              [role],
            );
            if (!rows[0]?.value) cmd.error(`No ${role} role is recorded in tenantry.meta: name the role`);
            role = rows[0]!.value;
          }
          await rotatePassword(admin, role, password);
          console.log(`password of ${role} changed: restart the processes that connect as it with the new one`);
        } finally {
          await admin.end();
        }
      });
    });
  return rotate;
}
