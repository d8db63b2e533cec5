import { createHash } from 'node:crypto';
import os from 'node:os';
import { Command, InvalidArgumentError as CommanderArgumentError } from 'commander';
import type pg from 'pg';
import { TenantCatalog } from '../catalog/tenant-catalog.js';
import type { Tenant } from '../catalog/tenant.js';
import { runAs } from '../context/tenant-context.js';
import { hasMultipleStatements } from '../data/statement-text.js';
import { sqlStateOf } from '../errors/sqlstate.js';
import { InvalidArgumentError, TenantryError, TenantSuspendedError } from '../errors/tenantry-error.js';
import { checkSupportStatement } from './support-statement.js';
import { QueryGuard, type GuardMode } from '../guard/query-guard.js';
import { loadTenantTables } from '../guard/tenant-table-map.js';
import { REASON_MAX_LENGTH, REASON_MIN_VISIBLE } from '../identity/staff-access.js';
import { hasDeceptiveCharacters, visibleLength } from '../identity/visible-length.js';
import { RoutedTenantPool } from '../tiers/routed-tenant-pool.js';
import { TenantRouter } from '../tiers/tenant-router.js';
import { commandPool, withDatabase, type ConnectionOptions } from './connection.js';
import { textTable } from './text-table.js';

interface SqlFlags {
  tenant: string;
  reason: string;
  operator?: string;
  write?: boolean;
  guard: GuardMode;
  timeout: number;
  json?: boolean;
}

/** Statement text kept in the audit entry (the entry's detail is bounded at 8 KiB). */
const AUDITED_TEXT = 4000;

/** A support statement PostgreSQL refused: its SQLSTATE in `details`, the message as PostgreSQL wrote it. */
export class SupportSqlError extends TenantryError {
  constructor(sqlstate: string, message: string, cause: unknown) {
    super('SQL_FAILED', `The statement failed (SQLSTATE ${sqlstate}): ${message}`, {
      status: 400,
      details: { sqlstate },
      cause,
    });
  }
}

function checkInput(sql: string, flags: SqlFlags): { operator: string; reason: string } {
  if (sql.trim() === '') throw new InvalidArgumentError('give the statement to run', 'sql');
  if (sql.length > 100_000) throw new InvalidArgumentError('the statement is longer than 100,000 characters', 'sql');
  if (hasMultipleStatements(sql))
    throw new InvalidArgumentError('one statement at a time (it runs in a transaction of its own)', 'sql');
  const reason = (flags.reason ?? '').trim();
  if (visibleLength(reason) < REASON_MIN_VISIBLE || reason.length > REASON_MAX_LENGTH || hasDeceptiveCharacters(reason))
    throw new TenantryError(
      'REASON_INVALID',
      `--reason: say why, in ${REASON_MIN_VISIBLE} to ${REASON_MAX_LENGTH} characters without control characters (it is written to the tenant's audit log)`,
      { status: 400 },
    );
  const operator = (flags.operator ?? process.env.TENANTRY_OPERATOR ?? os.userInfo().username).trim();
  if (!/^[\p{L}\p{N}@._+ -]{1,100}$/u.test(operator))
    throw new InvalidArgumentError('--operator: a name of 1-100 letters, digits, spaces or @._+-', 'operator');
  return { operator, reason };
}

function usable(tenant: Tenant): void {
  if (tenant.status === 'suspended') throw new TenantSuspendedError({ slug: tenant.slug });
  if (tenant.status === 'provisioning')
    throw new TenantryError('TENANT_PROVISIONING', 'Tenant is still being onboarded: run its onboarding again', {
      status: 409,
      details: { slug: tenant.slug },
    });
  if (tenant.status === 'deleted')
    throw new TenantryError('TENANT_DELETED', 'Tenant is deleted', { status: 410, details: { slug: tenant.slug } });
}

/** One value as psql would print it: NULL spelled out, dates in ISO form, JSON as JSON, bytes as hex. */
function cell(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

async function audit(owner: pg.Pool, tenantId: string, action: string, reason: string | null, detail: object) {
  const { rows } = await owner.query<{ seq: string }>(
    `insert into tenantry.audit_log (tenant_id, actor_kind, action, reason, detail)
     values ($1, 'system', $2, $3, $4) returning seq::text`,
    [tenantId, action, reason, JSON.stringify(detail)],
  );
  return rows[0]!.seq;
}

/**
 * `tenantry sql --tenant <slug> --reason "…" "<statement>"`: one statement as one tenant, through
 * the tenant pool (the app role, the signed context, the query guard, routed to the tenant's
 * placement), in a read-only transaction unless `--write`. Written to the tenant's audit log
 * before it runs (operator, reason, the statement) and after (outcome, row count).
 */
export function sqlCommand(globals: () => ConnectionOptions): Command {
  return new Command('sql')
    .argument('<statement>', 'one SQL statement')
    .description(
      "run one SQL statement as a tenant (app role, tenant context, query guard), for support work; audited in the tenant's log",
    )
    .requiredOption('--tenant <slug>', 'tenant slug or id')
    .requiredOption('--reason <text>', "why (10-500 characters, written to the tenant's audit log)")
    .option('--operator <name>', 'who runs it (default: TENANTRY_OPERATOR, else the OS user)')
    .option('--write', 'allow changes (default: a read-only transaction)')
    .option(
      '--guard <mode>',
      'query guard: enforce, report or off (TENANTRY_GUARD sets the default; enforce, as the reference server)',
      (raw: string) => {
        if (!['enforce', 'report', 'off'].includes(raw)) throw new CommanderArgumentError('enforce, report or off');
        return raw as GuardMode;
      },
      (process.env.TENANTRY_GUARD?.trim().toLowerCase() || 'enforce') as GuardMode,
    )
    .option(
      '--timeout <ms>',
      'statement timeout in milliseconds',
      (raw: string) => {
        const n = Number(raw);
        if (!Number.isInteger(n) || n < 1 || n > 3_600_000)
          throw new CommanderArgumentError('a whole number of milliseconds from 1 to 3600000');
        return n;
      },
      30_000,
    )
    .option('--json', 'print the rows as JSON')
    .action(async (sql: string, flags: SqlFlags) => {
      const { operator, reason } = checkInput(sql, flags);
      await checkSupportStatement(sql);
      await withDatabase(globals(), async (db) => {
        const g = globals();
        const ownerUrl =
          process.env.TENANTRY_OWNER_DATABASE_URL ??
          (g.databaseUrl || process.env.DATABASE_URL ? db.adminUrl : db.ownerUrl);
        const owner = commandPool({ connectionString: ownerUrl, max: 2 });
        // routes are the router role's to read (the app role may not)
        const routes = commandPool({ connectionString: db.routerUrl, max: 1 });
        let router: TenantRouter | undefined;
        let pool: RoutedTenantPool | undefined;
        try {
          const tenant = await new TenantCatalog(owner).get(flags.tenant);
          usable(tenant);
          let guard: QueryGuard | undefined;
          if (flags.guard !== 'off') {
            await QueryGuard.ready();
            guard = new QueryGuard({ mode: flags.guard, tables: await loadTenantTables(owner), callSite: false });
          }
          router = new TenantRouter({ pool: routes });
          await router.start();
          pool = new RoutedTenantPool({
            router,
            clusters: { home: db.appUrl },
            contextSecret: db.contextSecret,
            maxConnections: 1,
            poolSize: 1,
            statementTimeoutMs: flags.timeout,
            ...(guard ? { guard } : {}),
          });
          const entry = await audit(owner, tenant.id, 'support.sql', reason, {
            operator,
            statement: sql.slice(0, AUDITED_TEXT),
            truncated: sql.length > AUDITED_TEXT,
            sha256: createHash('sha256').update(sql).digest('hex'),
            write: !!flags.write,
            guard: flags.guard,
          });
          const routed = pool;
          let result: pg.QueryArrayResult;
          try {
            result = await runAs(tenant.id, async () => {
              const client = await routed.connect();
              let broken = false;
              try {
                await client.query('BEGIN');
                if (!flags.write) await client.query('SET TRANSACTION READ ONLY');
                const r = await client.query({ text: sql, rowMode: 'array' });
                await client.query('COMMIT');
                return r as pg.QueryArrayResult;
              } catch (error) {
                broken = true;
                await client.query('ROLLBACK').catch(() => undefined);
                throw error;
              } finally {
                client.release(broken);
              }
            });
          } catch (error) {
            const sqlstate = sqlStateOf(error);
            const code = error instanceof TenantryError ? error.code : null;
            await audit(owner, tenant.id, 'support.sql.failed', null, { entry, sqlstate: sqlstate ?? null, code });
            if (sqlstate && !(error instanceof TenantryError))
              throw new SupportSqlError(sqlstate, (error as Error).message, error);
            throw error;
          }
          await audit(owner, tenant.id, 'support.sql.done', null, {
            entry,
            command: result.command,
            rowCount: result.rowCount,
          });
          const names = (result.fields ?? []).map((f) => f.name);
          if (flags.json) {
            console.log(
              JSON.stringify(
                {
                  command: result.command,
                  rowCount: result.rowCount,
                  columns: names,
                  rows: result.rows,
                  auditEntry: entry,
                },
                null,
                2,
              ),
            );
          } else if (names.length > 0) {
            console.log(
              result.rows.length
                ? textTable(
                    names,
                    result.rows.map((r) => r.map(cell)),
                  )
                : names.join('  '),
            );
            console.log(`(${result.rows.length} row${result.rows.length === 1 ? '' : 's'})`);
          } else {
            console.log(`${result.command}${result.rowCount === null ? '' : ` ${result.rowCount}`}`);
          }
          console.error(`audited: entry ${entry} in ${tenant.slug}'s audit log (operator ${operator})`);
        } finally {
          await pool?.end();
          await router?.close();
          await routes.end();
          await owner.end();
        }
      });
    });
}
