import { Command } from 'commander';
import os from 'node:os';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import { InvalidArgumentError } from '../errors/tenantry-error.js';
import { TenantPurger, type PurgePlan } from '../lifecycle/purge/tenant-purger.js';
import type { PurgeStep } from '../lifecycle/purge/purge-plan.js';
import type { AuditPolicy } from '../lifecycle/purge/purge-policy.js';
import type { VerifiedPurgeReport } from '../lifecycle/purge/purge-report.js';
import { jobsPurgeParticipant } from '../jobs/purge-tenant-jobs.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { progressReporter } from './progress-reporter.js';
import { textTable } from './text-table.js';

interface PurgeOptions {
  dryRun?: boolean;
  confirm?: string;
  operator?: string;
  retentionDays: string;
  planRetention?: string[];
  ignoreRetention?: boolean;
  audit: string;
  batchSize: string;
  clusterUrl?: string[];
  adminUrl?: string[];
  alsoTable?: string[];
  json?: boolean;
}

const collect = (v: string, all: string[] = []) => [...all, v];

function namedUrls(pairs: string[], option: string): Record<string, string> {
  const urls: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at < 1) throw new InvalidArgumentError(`--${option} takes name=value`, option);
    urls[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return urls;
}

function wholeNumber(text: string, option: string): number {
  if (!/^\d{1,6}$/.test(text)) throw new InvalidArgumentError(`--${option} takes a whole number`, option);
  return Number(text);
}

/** The owner URL of the home database, as the other tenant commands choose it. */
function ownerUrlOf(globals: ConnectionOptions, db: { adminUrl: string; ownerUrl: string }): string {
  return (
    process.env.TENANTRY_OWNER_DATABASE_URL ??
    (globals.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl)
  );
}

function where(s: PurgeStep | VerifiedPurgeReport['report']['steps'][number]): string {
  if (s.kind === 'participant' || s.kind === 'fence') return s.name ?? '';
  const at = s.cluster ? `${s.cluster}/${s.database}` : 'catalog';
  return s.kind === 'schema' ? `${at} schema ${s.schema}` : s.kind === 'database' ? at : `${at}`;
}

function planText(plan: PurgePlan): string {
  const lines = [
    `purge plan for ${plan.tenant.slug} (${plan.tenant.id}), ${plan.tenant.status}, ${plan.tenant.tier} on ${plan.tenant.cluster}`,
    `retention: ${plan.retention.days} days (${plan.retention.source})${plan.retention.dueAt ? `, due ${plan.retention.dueAt.toISOString()}` : ''}${plan.retentionWaived ? ' (waived)' : ''}`,
    `audit entries: ${plan.audit}`,
  ];
  if (plan.resumes) lines.push(`resumes purge ${plan.resumes} (stopped midway)`);
  lines.push(
    textTable(
      ['STEP', 'ACTION', 'WHERE', 'TABLE', 'ROWS'],
      plan.steps.map((s) => [
        s.kind,
        s.action,
        where(s),
        s.table ?? s.schema ?? s.database ?? '',
        String(s.rowsBefore),
      ]),
    ),
  );
  if (plan.blockers.length === 0) lines.push(`ready: run again with --confirm ${plan.tenant.slug}`);
  else for (const b of plan.blockers) lines.push(`refused now: ${b.code}: ${b.message}`);
  return lines.join('\n');
}

function reportText(v: VerifiedPurgeReport): string {
  const r = v.report;
  return [
    `purge ${r.purgeId} of ${r.tenant.slug} (${r.tenant.id}), ${r.tenant.tier}`,
    `operator: ${r.operator}`,
    `started ${r.startedAt}, finished ${r.finishedAt}; audit entries: ${r.policy.audit}${r.policy.retentionWaived ? '; retention waived' : ''}`,
    textTable(
      ['STEP', 'ACTION', 'WHERE', 'TABLE', 'BEFORE', 'AFTER', 'DROPPED'],
      r.steps.map((s) => [
        s.kind,
        s.action,
        where(s),
        s.table ?? s.schema ?? s.database ?? '',
        String(s.rowsBefore),
        String(s.rowsAfter),
        s.dropped ? 'yes' : '',
      ]),
    ),
    `signature: ${v.signature} (${v.valid ? 'valid' : `INVALID: ${v.problem}`})`,
  ].join('\n');
}

/** Runs `fn` with a purger on the home database's owner role and the given clusters. */
async function withPurger<T>(
  globals: ConnectionOptions,
  opts: Partial<PurgeOptions>,
  fn: (purger: TenantPurger) => Promise<T>,
): Promise<T> {
  return withDatabase(globals, async (db) => {
    const ownerUrl = ownerUrlOf(globals, db);
    const audit = opts.audit ?? 'anonymise';
    if (!['keep', 'anonymise', 'delete'].includes(audit))
      throw new InvalidArgumentError('--audit takes keep, anonymise or delete', 'audit');
    const plans = Object.fromEntries(
      Object.entries(namedUrls(opts.planRetention ?? [], 'plan-retention')).map(([p, d]) => [
        p,
        wholeNumber(d, 'plan-retention'),
      ]),
    );
    const catalog = commandPool({ connectionString: ownerUrl, max: 3 });
    const progress = progressReporter({ label: 'purge' });
    const purger = new TenantPurger({
      catalog,
      owners: { home: ownerUrl, ...namedUrls(opts.clusterUrl ?? [], 'cluster-url') },
      admins: { home: db.adminUrl, ...namedUrls(opts.adminUrl ?? [], 'admin-url') },
      policy: {
        retentionDays: wholeNumber(opts.retentionDays ?? '30', 'retention-days'),
        plans,
        audit: audit as AuditPolicy,
      },
      extraTables: opts.alsoTable ?? [],
      // tenantry/jobs' queue (pg-boss's tables in the home database; nothing where it was never installed)
      participants: [jobsPurgeParticipant(catalog)],
      batchSize: wholeNumber(opts.batchSize ?? '1000', 'batch-size'),
      onProgress: (p) =>
        progress.update({
          phase: `${p.index + 1}/${p.total} ${p.step.action} ${p.step.table ?? p.step.schema ?? p.step.database ?? p.step.name ?? ''}${p.step.cluster ? ` (${p.step.cluster}/${p.step.database})` : ''}`,
          done: p.removed,
          total: p.step.rowsBefore,
          unit: p.step.kind === 'table' || p.step.kind === 'library' ? 'rows' : undefined,
        }),
    });
    try {
      return await fn(purger);
    } finally {
      progress.stop();
      await purger.end();
      await catalog.end();
    }
  });
}

/** `tenantry tenants purge <tenant> --dry-run | --confirm <slug>`. */
export function purgeCommand(globals: () => ConnectionOptions): Command {
  return new Command('purge')
    .argument('<tenant>', 'tenant id or slug (soft-deleted)')
    .description(
      'purge a soft-deleted tenant: every row in every placement, its schema or database, its sessions, keys, codes, domains, jobs; writes a signed report (resumable: run again after a crash)',
    )
    .option('--dry-run', 'print the plan (counts now) and what would stop it; change nothing')
    .option('--confirm <slug>', 'required for the real run: the tenant slug, typed again')
    .option('--operator <name>', 'who runs it, recorded in the report (default: the OS user)')
    .option('--retention-days <n>', 'days from the soft delete to the purge, for plans without their own', '30')
    .option('--plan-retention <plan=days>', 'retention of one plan (repeatable)', collect)
    .option('--ignore-retention', 'purge before the retention period is over (recorded in the report)')
    .option('--audit <policy>', 'audit entries: keep, anonymise or delete', 'anonymise')
    .option('--batch-size <n>', 'rows per delete transaction', '1000')
    .option('--cluster-url <name=url>', 'owner URL of another cluster (repeatable)', collect)
    .option('--admin-url <name=url>', "superuser URL of a cluster, to drop a tenant's database (repeatable)", collect)
    .option('--also-table <schema.table>', 'another table whose tenant_id rows the purge deletes (repeatable)', collect)
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: PurgeOptions) => {
      if (!opts.dryRun && opts.confirm === undefined)
        throw new InvalidArgumentError(
          'a purge cannot be undone: print the plan with --dry-run, then run with --confirm <slug>',
          'confirm',
        );
      await withPurger(globals(), opts, async (purger) => {
        if (opts.dryRun) {
          const plan = await purger.plan(ref, { ignoreRetention: !!opts.ignoreRetention });
          console.log(opts.json ? JSON.stringify(plan, null, 2) : planText(plan));
          return;
        }
        const verified = await purger.run(ref, {
          confirm: opts.confirm!,
          operator: opts.operator ?? os.userInfo().username,
          ignoreRetention: !!opts.ignoreRetention,
        });
        console.log(opts.json ? verified.text : reportText(verified));
      });
    });
}

/** `tenantry tenants purge-report <tenant> [--verify]`. */
export function purgeReportCommand(globals: () => ConnectionOptions): Command {
  return new Command('purge-report')
    .argument('<tenant>', 'the purged tenant id or slug')
    .description('print the signed report of a completed purge; --verify exits 1 unless its signature holds')
    .option('--verify', 'check the signature (exit code 1 when the report was altered)')
    .option('--json', 'print the report as stored')
    .action(async (ref: string, opts: { verify?: boolean; json?: boolean }) => {
      const verified = await withPurger(globals(), {}, (purger) => purger.report(ref));
      console.log(opts.json ? verified.text : reportText(verified));
      if (opts.verify && !verified.valid) {
        console.error(`error PURGE_REPORT_INVALID: ${verified.problem}`);
        process.exitCode = 1;
      }
    });
}

/** `tenantry tenants restore <tenant>`: deleted → active, before the purge. */
export function restoreCommand(globals: () => ConnectionOptions): Command {
  return new Command('restore')
    .argument('<tenant>', 'tenant id or slug (soft-deleted, not purged)')
    .description('undo a soft delete before the purge: the tenant is active again, with all its data')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const tenant = await withDatabase(globals(), async (db) => {
        const pool = commandPool({ connectionString: ownerUrlOf(globals(), db), max: 2 });
        try {
          return await new TenantCatalog(pool).restore(ref);
        } finally {
          await pool.end();
        }
      });
      console.log(
        opts.json ? JSON.stringify(tenant, null, 2) : `${tenant.slug} (${tenant.id}) is ${tenant.status} again`,
      );
    });
}
