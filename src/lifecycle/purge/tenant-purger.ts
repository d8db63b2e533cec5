import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { TenantCatalog } from '../../catalog/tenant-catalog.js';
import type { Tenant } from '../../catalog/tenant.js';
import { InvalidArgumentError, TenantNotFoundError, TenantryError } from '../../errors/tenantry-error.js';
import { SqlState, sqlStateOf } from '../../errors/sqlstate.js';
import { listMigrationTargets } from '../../tiers/migrate/migration-target.js';
import { Placements, type Placement } from '../../tiers/placements.js';
import { PurgeDatabases } from './purge-databases.js';
import { PurgeError } from './purge-error.js';
import type { PurgeParticipant } from './purge-participant.js';
import {
  ident,
  qualified,
  refuseSharedDrop,
  scanPurge,
  shortTransaction,
  type PurgeStep,
  type UnaccountedTable,
} from './purge-plan.js';
import { purgePolicy, retentionOf, type PurgePolicy, type Retention } from './purge-policy.js';
import {
  PURGE_REPORT_FORMAT,
  signPurgeReport,
  verifyPurgeReport,
  type PurgeReport,
  type VerifiedPurgeReport,
} from './purge-report.js';

/** Options of {@link TenantPurger}. */
export interface TenantPurgerOptions {
  /** The home database (the catalog) as the owner role: a pg.Pool (the run holds one connection for its lock). */
  catalog: pg.Pool;
  /** Each cluster's shared database as the owner role: `{ home: ownerUrl, eu: … }` (home is the catalog's database). */
  owners: Record<string, string>;
  /** The catalog's cluster, as placements name it (default `home`). */
  homeCluster?: string;
  /** A superuser URL per cluster whose database-tier tenants may be purged (DROP DATABASE needs one). */
  admins?: Record<string, string>;
  policy?: PurgePolicy;
  /** Job queues, caches…: see {@link PurgeParticipant}. */
  participants?: readonly PurgeParticipant[];
  /** More tables (`schema.table`) with a `tenant_id` column whose tenant rows the purge deletes, in every database that has them. */
  extraTables?: readonly string[];
  /** Rows per delete (one short transaction each). Default 1000. */
  batchSize?: number;
  /** How long a batch waits for a lock before it backs off and retries (bounded). Default 2000. */
  lockTimeoutMs?: number;
  /** Bound of each statement. Default 60000. */
  statementTimeoutMs?: number;
  /** Called after each step and each batch (awaited). */
  onProgress?: (progress: PurgeProgress) => void | Promise<void>;
}

/** Where a purge is: step `index` of `total`, and how many rows the step removed so far. */
export interface PurgeProgress {
  purgeId: string;
  index: number;
  total: number;
  step: PurgeStep;
  removed: number;
}

/** The answer of {@link TenantPurger.plan}: what a purge would do, and what stops it now. */
export interface PurgePlan {
  tenant: { id: string; slug: string; status: string; tier: string; cluster: string };
  retention: Retention;
  retentionWaived: boolean;
  audit: string;
  steps: PurgeStep[];
  unaccounted: UnaccountedTable[];
  /** Why a run would refuse now (empty: it would run). */
  blockers: Array<{ code: string; message: string }>;
  /** A purge of this tenant that stopped midway: a run resumes it. */
  resumes: string | null;
}

/** Options of {@link TenantPurger.run}. */
export interface PurgeRunOptions {
  /** The tenant's slug, typed again: the run refuses anything else (PURGE_CONFIRMATION_REQUIRED). */
  confirm: string;
  /** Who runs it, recorded in the report (1-200 printable characters). */
  operator: string;
  /** Purge before the retention period is over (recorded in the report). */
  ignoreRetention?: boolean;
}

interface PurgeRow {
  id: string;
  tenant_id: string;
  slug: string;
  operator: string;
  state: 'running' | 'completed';
  plan: PurgeStep[];
  options: { audit: string; retention: Retention; retentionWaived: boolean; pseudonym: string; placement: Placement };
  started_at: Date;
  report: string | null;
  signature: string | null;
}

const RETRYABLE = new Set<string>([
  SqlState.lockNotAvailable,
  SqlState.deadlockDetected,
  SqlState.serializationFailure,
]);

/**
 * Purges soft-deleted tenants: every row of the tenant in every registered tenant table of every
 * database the catalog knows (shared tables, its schema or database dropped, leftovers of moves),
 * the library's own tables (sessions, API keys, one-time codes, domains, staff grants, moves; the
 * audit log by policy), the participants' data (jobs, caches), then its catalog row, and writes a
 * signed report. Refuses while any table with a `tenant_id` column is not accounted for.
 * Deletes in short batches; writes for the tenant are refused from the first step (its route is
 * fenced in every database). Resumable: run it again after a crash and it finishes.
 *
 * @example
 * const purger = new TenantPurger({ catalog: ownerPool, owners: { home: ownerUrl } });
 * console.log((await purger.plan('acme')).steps);
 * const report = await purger.run('acme', { confirm: 'acme', operator: 'ops@example.com' });
 * await purger.end();
 */
export class TenantPurger {
  readonly #o: TenantPurgerOptions;
  readonly #policy: Required<PurgePolicy>;
  readonly #dbs: PurgeDatabases;
  readonly #catalog: TenantCatalog;
  readonly #batch: number;

  constructor(options: TenantPurgerOptions) {
    this.#o = options;
    this.#policy = purgePolicy(options.policy);
    this.#dbs = new PurgeDatabases(options.owners, options.admins);
    this.#catalog = new TenantCatalog(options.catalog);
    this.#batch = options.batchSize ?? 1000;
    if (!Number.isInteger(this.#batch) || this.#batch < 1 || this.#batch > 100_000)
      throw new InvalidArgumentError('batchSize must be an integer from 1 to 100000', 'batchSize');
    for (const p of options.participants ?? [])
      if (!/^[a-z0-9_.-]{1,63}$/.test(p.name))
        throw new InvalidArgumentError('participant names are 1-63 of [a-z0-9_.-]', 'participants');
    for (const t of options.extraTables ?? [])
      if (!/^[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}$/.test(t))
        throw new InvalidArgumentError('extra tables are schema.table', 'extraTables');
  }

  /** What a purge of the tenant would do (counts now), and what would stop it. Changes nothing. */
  async plan(ref: string, options: { ignoreRetention?: boolean } = {}): Promise<PurgePlan> {
    const tenant = await this.#catalog.get(ref);
    const running = await this.#running(tenant.id);
    const retention = retentionOf(tenant, this.#policy);
    const placement = running?.options.placement ?? (await this.#placement(tenant.id));
    const scan = await this.#scan(tenant.id, placement);
    const blockers: PurgePlan['blockers'] = [];
    if (tenant.status !== 'deleted')
      blockers.push({ code: 'TENANT_NOT_DELETED', message: `the tenant is ${tenant.status}: soft-delete it first` });
    else if (!options.ignoreRetention && !running && retention.dueAt && retention.dueAt > new Date())
      blockers.push({
        code: 'PURGE_RETENTION',
        message: `retention runs until ${retention.dueAt.toISOString()} (to purge earlier: ignoreRetention, --ignore-retention on the CLI)`,
      });
    if (scan.unaccounted.length > 0)
      blockers.push({
        code: 'PURGE_UNACCOUNTED_TABLES',
        message: `tables with a tenant_id column nothing purges: ${scan.unaccounted.map(describeTable).join(', ')}`,
      });
    if (scan.missingAdmins.length > 0)
      blockers.push({
        code: 'PURGE_NOT_READY',
        message: `a superuser URL is needed to drop the tenant's database on cluster ${scan.missingAdmins.join(', ')}`,
      });
    if (await this.#openMove(tenant.id))
      blockers.push({ code: 'PURGE_BUSY', message: 'the tenant has a move under way' });
    return {
      tenant: {
        id: tenant.id,
        slug: tenant.slug,
        status: tenant.status,
        tier: placement.tier,
        cluster: placement.cluster,
      },
      retention,
      retentionWaived: !!options.ignoreRetention,
      audit: this.#policy.audit,
      steps: running ? running.plan : this.#withEnds(scan.steps, tenant.id, placement),
      unaccounted: scan.unaccounted,
      blockers,
      resumes: running?.id ?? null,
    };
  }

  /**
   * Purges the tenant (or finishes a purge that stopped midway) and returns its verified report.
   * Run again after it completed, it returns the stored report.
   */
  async run(ref: string, options: PurgeRunOptions): Promise<VerifiedPurgeReport> {
    const operator = typeof options.operator === 'string' ? options.operator.trim() : '';
    if (operator.length < 1 || operator.length > 200 || /\p{Cc}/u.test(operator))
      throw new InvalidArgumentError('operator: 1-200 printable characters', 'operator');
    const tenant = await this.#catalog.find(ref);
    if (!tenant) {
      const done = await this.#completed(ref).catch(() => undefined);
      if (done && options.confirm === done.report.tenant.slug) return done;
      throw new TenantNotFoundError();
    }
    if (options.confirm !== tenant.slug)
      throw new PurgeError(
        'PURGE_CONFIRMATION_REQUIRED',
        'Confirm the purge by typing the tenant slug (--confirm <slug>)',
        {
          details: { field: 'confirm' },
        },
      );
    const holder = await this.#o.catalog.connect();
    try {
      const { rows } = await holder.query<{ locked: boolean }>('select pg_try_advisory_lock(hashtext($1)) as locked', [
        `tenantry.purge:${tenant.id}`,
      ]);
      if (!rows[0]!.locked) throw new PurgeError('PURGE_BUSY', 'Another purge of this tenant is running');
      try {
        const record = (await this.#running(tenant.id)) ?? (await this.#begin(tenant, operator, options));
        await this.#execute(record);
        return await this.#finish(record);
      } finally {
        await holder
          .query('select pg_advisory_unlock(hashtext($1))', [`tenantry.purge:${tenant.id}`])
          .catch(() => undefined);
      }
    } finally {
      holder.release();
    }
  }

  /**
   * Finishes every purge that a stop or a crash left open (one after another), as their operators
   * started them: what a server does at start, so an acknowledged purge needs no person to finish.
   * Returns the purge ids it finished and those that failed again (they stay open: a later run,
   * or the next start, resumes them).
   */
  async resumeOpen(): Promise<{ resumed: string[]; failed: string[] }> {
    const { rows } = await this.#o.catalog.query<{ id: string; tenant_id: string; slug: string; operator: string }>(
      `select id, tenant_id, slug, operator from tenantry.purges where state = 'running' order by started_at`,
    );
    const outcome = { resumed: [] as string[], failed: [] as string[] };
    for (const row of rows) {
      try {
        const tenant = await this.#catalog.find(row.tenant_id);
        // the record was begun with the slug confirmed: the same confirmation resumes it
        await this.run(row.tenant_id, { confirm: tenant?.slug ?? row.slug, operator: row.operator });
        outcome.resumed.push(row.id);
      } catch {
        outcome.failed.push(row.id);
      }
    }
    return outcome;
  }

  /** The last completed purge's report of a tenant (id or slug), verified against its signature. */
  async report(ref: string): Promise<VerifiedPurgeReport> {
    return this.#completed(ref);
  }

  /** Closes the pools this purger opened (not `catalog`). */
  async end(): Promise<void> {
    await this.#dbs.end();
  }

  async #completed(ref: string): Promise<VerifiedPurgeReport> {
    const { rows } = await this.#o.catalog.query<PurgeRow>(
      `select id, tenant_id, slug, report, signature from tenantry.purges
        where state = 'completed' and (slug = $1 or tenant_id::text = lower($1)) order by finished_at desc limit 1`,
      [ref],
    );
    if (!rows[0]) throw new PurgeError('PURGE_REPORT_NOT_FOUND', 'No completed purge of this tenant is recorded');
    const row = rows[0];
    return verifyPurgeReport(this.#o.catalog, { ...row, report: row.report!, signature: row.signature! });
  }

  async #running(tenantId: string): Promise<PurgeRow | undefined> {
    const { rows } = await this.#o.catalog.query<PurgeRow>(
      `select id, tenant_id, slug, operator, state, plan, options, started_at from tenantry.purges
        where tenant_id = $1 and state = 'running'`,
      [tenantId],
    );
    return rows[0];
  }

  async #openMove(tenantId: string): Promise<boolean> {
    const { rows } = await this.#o.catalog.query(
      `select 1 from tenantry.moves where tenant_id = $1 and step not in ('done', 'cleaned', 'rolled_back')`,
      [tenantId],
    );
    return rows.length > 0;
  }

  #placement(tenantId: string): Promise<Placement> {
    return new Placements({ catalog: this.#o.catalog, owners: {}, homeCluster: this.#o.homeCluster }).get(tenantId);
  }

  #scan(tenantId: string, placement: Placement, withParticipants = true) {
    return scanPurge({
      catalog: this.#o.catalog,
      owners: this.#o.owners,
      dbs: this.#dbs,
      tenantId,
      placement,
      participants: this.#o.participants ?? [],
      extraTables: this.#o.extraTables ?? [],
      audit: this.#policy.audit,
      withParticipants,
      homeCluster: this.#o.homeCluster,
    });
  }

  // the route fence first (writes refused from then on), the catalog rows last
  #withEnds(steps: PurgeStep[], tenantId: string, placement: Placement): PurgeStep[] {
    const base = {
      cluster: null,
      database: null,
      schema: null,
      name: null,
      column: 'id',
      values: [tenantId],
      valueType: 'uuid' as const,
      rowsAfter: null,
      done: false,
    };
    return [
      {
        ...base,
        key: 'fence',
        kind: 'fence',
        action: 'fence',
        table: 'tenantry.local_tenants',
        column: 'tenant_key',
        rowsBefore: 0,
      },
      ...steps,
      {
        ...base,
        key: 'catalog:tenantry.placements',
        kind: 'catalog',
        action: 'delete',
        table: 'tenantry.placements',
        column: 'tenant_id',
        rowsBefore: placement.epoch === 0 ? 0 : 1,
      },
      {
        ...base,
        key: 'catalog:tenantry.tenants',
        kind: 'catalog',
        action: 'delete',
        table: 'tenantry.tenants',
        rowsBefore: 1,
      },
    ];
  }

  async #begin(tenant: Tenant, operator: string, options: PurgeRunOptions): Promise<PurgeRow> {
    if (tenant.status !== 'deleted')
      throw new PurgeError(
        'TENANT_NOT_DELETED',
        `Only a soft-deleted tenant can be purged (this one is ${tenant.status})`,
        {
          details: { status: tenant.status },
        },
      );
    const retention = retentionOf(tenant, this.#policy);
    if (!options.ignoreRetention && retention.dueAt && retention.dueAt > new Date())
      throw new PurgeError('PURGE_RETENTION', `The retention period runs until ${retention.dueAt.toISOString()}`, {
        details: { dueAt: retention.dueAt.toISOString(), days: retention.days, source: retention.source },
      });
    if (await this.#openMove(tenant.id))
      throw new PurgeError('PURGE_BUSY', 'The tenant has a move under way: finish or roll it back first');
    const placement = await this.#placement(tenant.id);
    const scan = await this.#scan(tenant.id, placement);
    refuseUnaccounted(scan.unaccounted);
    if (scan.missingAdmins.length > 0)
      throw new PurgeError(
        'PURGE_NOT_READY',
        "A superuser URL of the tenant's cluster is needed to drop its database",
        {
          details: { clusters: scan.missingAdmins },
        },
      );
    const { rows } = await this.#o.catalog.query<PurgeRow>(
      `insert into tenantry.purges (tenant_id, slug, operator, plan, options) values ($1, $2, $3, $4, $5)
       returning id, tenant_id, slug, operator, state, plan, options, started_at`,
      [
        tenant.id,
        tenant.slug,
        operator,
        JSON.stringify(this.#withEnds(scan.steps, tenant.id, placement)),
        JSON.stringify({
          audit: this.#policy.audit,
          retention,
          retentionWaived: !!options.ignoreRetention,
          pseudonym: randomUUID(),
          placement,
        }),
      ],
    );
    return rows[0]!;
  }

  async #save(record: PurgeRow): Promise<void> {
    await this.#o.catalog.query('update tenantry.purges set plan = $2, updated_at = now() where id = $1', [
      record.id,
      JSON.stringify(record.plan),
    ]);
  }

  async #execute(record: PurgeRow): Promise<void> {
    const steps = record.plan;
    for (const [index, step] of steps.entries()) {
      if (step.done || step.kind === 'catalog') continue;
      await this.#runStep(record, step, async (removed) =>
        this.#o.onProgress?.({ purgeId: record.id, index, total: steps.length, step, removed }),
      ).catch((error: unknown) => {
        throw stepFailed(step, error);
      });
      step.done = true;
      await this.#save(record);
      await this.#o.onProgress?.({ purgeId: record.id, index, total: steps.length, step, removed: step.rowsBefore });
    }
  }

  async #runStep(record: PurgeRow, step: PurgeStep, onBatch: (removed: number) => Promise<void>): Promise<number> {
    switch (step.action) {
      case 'fence':
        return this.#fence(record);
      case 'purge': {
        const participant = (this.#o.participants ?? []).find((p) => p.name === step.name);
        if (!participant)
          throw new PurgeError(
            'PURGE_NOT_READY',
            `The purge began with participant ${step.name}: pass it again to resume`,
            {
              details: { participant: step.name },
            },
          );
        return participant.purge(record.tenant_id);
      }
      case 'delete':
      case 'anonymise':
        return this.#removeRows(record, step, onBatch);
      case 'drop':
        // checked again at the drop itself: a plan made before the check, or a place that changed since
        await refuseSharedDrop({
          catalog: this.#o.catalog,
          owners: this.#o.owners,
          homeCluster: this.#o.homeCluster,
          tenantId: record.tenant_id,
          target: {
            tier: step.kind === 'schema' ? 'schema' : 'database',
            cluster: step.cluster!,
            database: step.kind === 'database' ? step.database : null,
            schema: step.kind === 'schema' ? step.schema : null,
          },
        });
        if (step.kind === 'schema') {
          const pool = this.#dbs.pool(step.cluster!, step.database!);
          await this.#retrying(() =>
            shortTransaction(pool, this.#timeouts(), (c) =>
              c.query(`DROP SCHEMA IF EXISTS ${ident(step.schema!)} CASCADE`),
            ),
          );
        } else await this.#dbs.dropDatabase(step.cluster!, step.database!, ident(step.database!));
        return step.rowsBefore;
      default:
        return 0; // keep; dropped (with its schema or database)
    }
  }

  #timeouts() {
    return { lockTimeoutMs: this.#o.lockTimeoutMs ?? 2000, statementTimeoutMs: this.#o.statementTimeoutMs ?? 60_000 };
  }

  // a lock held elsewhere (a long transaction on the table) makes a batch give up quickly and try
  // again later, rather than queue behind it and make everyone else queue behind the purge
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (attempt >= 8 || !RETRYABLE.has(sqlStateOf(error) ?? '')) throw error;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** attempt)));
      }
    }
  }

  // every database refuses the tenant's context from now on (TR003, as after a move): a write
  // racing the purge fails instead of adding rows behind it. Left in place after the purge, so a
  // context minted before it cannot write either.
  async #fence(record: PurgeRow): Promise<number> {
    const targets = (await listMigrationTargets(this.#o.catalog, this.#o.owners)).filter((t) => t.schema === null);
    let fenced = 0;
    for (const t of targets) {
      if (t.kind === 'database' && !(await this.#dbs.databaseExists(t.cluster, t.database))) continue;
      await this.#dbs.pool(t.cluster, t.database).query(
        // schema null: a schema of that name made later for another tenant must not be taken
        // for this one's (tiers/003's guard falls back on local_tenants.schema)
        `insert into tenantry.local_tenants (tenant_key, state, epoch, schema) values ($1, 'moved', $2, null)
         on conflict (tenant_key) do update set state = 'moved', schema = null, updated_at = excluded.updated_at`,
        [record.tenant_id, record.options.placement.epoch],
      );
      fenced++;
    }
    const fence = record.plan.find((s) => s.kind === 'fence');
    if (fence) fence.name = `${fenced} database${fenced === 1 ? '' : 's'}`;
    return fenced;
  }

  async #removeRows(record: PurgeRow, step: PurgeStep, onBatch: (removed: number) => Promise<void>): Promise<number> {
    const pool = this.#dbs.pool(step.cluster!, step.database!);
    const t = qualified(step.table!);
    const c = ident(step.column!);
    const type = step.valueType === 'text' ? 'text' : 'uuid';
    const audit = step.table === 'tenantry.audit_log';
    let removed = 0;
    for (;;) {
      const n = await this.#retrying(() =>
        shortTransaction(pool, this.#timeouts(), async (client) => {
          // the audit log refuses every UPDATE and DELETE (append-only trigger): off for this
          // batch only, inside its transaction (others' inserts wait the batch's few milliseconds)
          if (audit) await client.query('ALTER TABLE tenantry.audit_log DISABLE TRIGGER audit_log_append_only');
          const r =
            step.action === 'anonymise'
              ? await client.query(
                  `update tenantry.audit_log set tenant_id = $3, actor_id = null, reason = null, detail = '{}'
                    where id = any(array(select id from tenantry.audit_log where tenant_id = $1 limit $2))`,
                  [record.tenant_id, this.#batch, record.options.pseudonym],
                )
              : await client.query(
                  `delete from ${t} where ${c} = any($1::${type}[])
                      and ctid = any(array(select ctid from ${t} where ${c} = any($1::${type}[]) limit $2))`,
                  [step.values, this.#batch],
                );
          if (audit) await client.query('ALTER TABLE tenantry.audit_log ENABLE TRIGGER audit_log_append_only');
          return r.rowCount ?? 0;
        }),
      );
      removed += n;
      if (n > 0) await onBatch(removed);
      if (n < this.#batch) return removed;
    }
  }

  // counts everything again (a fresh scan of every database); rows written after their table's
  // step (by a writer that slipped in before the fence) are removed, at most three passes
  async #finish(record: PurgeRow): Promise<VerifiedPurgeReport> {
    const placement = record.options.placement;
    let after = new Map<string, number>();
    for (let pass = 0; ; pass++) {
      const fresh = await this.#scan(record.tenant_id, placement, false);
      refuseUnaccounted(fresh.unaccounted);
      after = new Map(fresh.steps.map((s) => [s.key, s.rowsBefore]));
      const left = fresh.steps.filter(
        (s) => s.rowsBefore > 0 && (s.action === 'delete' || s.action === 'anonymise' || s.action === 'dropped'),
      );
      if (left.length === 0) break;
      if (pass >= 3)
        throw new PurgeError('PURGE_INCOMPLETE', 'Rows of the tenant are still there after the purge: run it again', {
          details: { tables: left.map((s) => `${s.cluster}/${s.database}:${s.table}`) },
        });
      for (const s of left) {
        if (!record.plan.some((p) => p.key === s.key)) record.plan.push({ ...s, rowsBefore: 0, done: true });
        if (s.action !== 'dropped') await this.#removeRows(record, s, async () => undefined);
      }
      await this.#save(record);
    }
    for (const step of record.plan) {
      if (step.kind === 'participant') {
        const p = (this.#o.participants ?? []).find((x) => x.name === step.name);
        if (!p)
          throw new PurgeError(
            'PURGE_NOT_READY',
            `The purge began with participant ${step.name}: pass it again to resume`,
            {
              details: { participant: step.name },
            },
          );
        step.rowsAfter = await p.plan(record.tenant_id);
      } else if (step.kind === 'schema') {
        const { rows } = await this.#dbs
          .pool(step.cluster!, step.database!)
          .query('select 1 from pg_namespace where nspname = $1', [step.schema]);
        step.rowsAfter = rows.length;
      } else if (step.kind === 'database')
        step.rowsAfter = (await this.#dbs.databaseExists(step.cluster!, step.database!)) ? step.rowsBefore : 0;
      else if (step.kind === 'fence' || step.kind === 'catalog') step.rowsAfter = 0;
      else step.rowsAfter = after.get(step.key) ?? 0;
      if (step.rowsAfter !== 0 && step.action !== 'keep')
        throw new PurgeError(
          'PURGE_INCOMPLETE',
          'Something of the tenant is still there after the purge: run it again',
          {
            details: { step: step.key },
          },
        );
    }
    const report: PurgeReport = {
      format: PURGE_REPORT_FORMAT,
      purgeId: record.id,
      tenant: { id: record.tenant_id, slug: record.slug, tier: placement.tier },
      operator: record.operator,
      startedAt: new Date(record.started_at).toISOString(),
      finishedAt: new Date().toISOString(),
      policy: {
        audit: record.options.audit as PurgeReport['policy']['audit'],
        retention: {
          days: record.options.retention.days,
          source: record.options.retention.source,
          dueAt: record.options.retention.dueAt ? new Date(record.options.retention.dueAt).toISOString() : null,
        },
        retentionWaived: record.options.retentionWaived,
      },
      steps: record.plan.map((s) => ({
        kind: s.kind,
        action: s.action,
        cluster: s.cluster,
        database: s.database,
        schema: s.schema,
        table: s.table,
        name: s.name,
        rowsBefore: s.rowsBefore,
        rowsAfter: s.rowsAfter ?? 0,
        dropped: s.action === 'drop' || s.action === 'dropped',
      })),
    };
    const text = JSON.stringify(report, null, 2);
    const signature = await signPurgeReport(this.#o.catalog, text);
    // the record completes and the catalog row (with its placement) goes in one transaction
    const client = await this.#o.catalog.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `update tenantry.purges set state = 'completed', plan = $2, report = $3, signature = $4, finished_at = $5, updated_at = now()
          where id = $1`,
        [record.id, JSON.stringify(record.plan), text, signature, report.finishedAt],
      );
      await client.query('delete from tenantry.placements where tenant_id = $1', [record.tenant_id]);
      await client.query('delete from tenantry.tenants where id = $1', [record.tenant_id]);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return verifyPurgeReport(this.#o.catalog, { ...record, report: text, signature });
  }
}

function describeTable(t: UnaccountedTable): string {
  return `${t.table} (${t.cluster}/${t.database})`;
}

function refuseUnaccounted(unaccounted: UnaccountedTable[]): void {
  if (unaccounted.length === 0) return;
  throw new PurgeError(
    'PURGE_UNACCOUNTED_TABLES',
    `Tables with a tenant_id column that nothing purges: ${unaccounted.map(describeTable).join(', ')}. Register them (tenantry.register_tenant_table), or name them as extra tables or a participant's tables`,
    { details: { tables: unaccounted.map(describeTable) } },
  );
}

/** A step's raw failure (a SQLSTATE) as PURGE_STEP_FAILED naming the step; coded errors pass unchanged. */
function stepFailed(step: PurgeStep, error: unknown): unknown {
  if (error instanceof TenantryError) return error;
  const sqlstate = sqlStateOf(error) ?? null;
  return new PurgeError(
    'PURGE_STEP_FAILED',
    `Purge step ${step.action} ${step.kind}${step.table ? ` ${step.table}` : step.schema ? ` ${step.schema}` : step.database ? ` ${step.database}` : ''} failed${sqlstate ? ` (SQLSTATE ${sqlstate})` : ''}: fix the cause and run the purge again to resume`,
    { details: { step: step.key, sqlstate }, cause: error },
  );
}
