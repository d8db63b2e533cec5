import { runAs, runWithoutTenant } from '../context/tenant-context.js';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { quoteIdent } from '../policy/identifiers.js';
import { errorCode, type Actor, type AttemptResult } from './attempt-result.js';
import {
  judgeStatement,
  keyedStatements,
  listStatements,
  tenantOut,
  TENANT_OUT,
  type AttackStatement,
} from './attack-statements.js';
import { guessKeys } from './guessable-ids.js';
import type { IsolationContext, IsolationTenant, SqlResult } from './isolation-context.js';
import { diffSnapshots, snapshotRows } from './row-snapshot.js';
import type { TableAttemptKind } from './table-attempts.js';
import { keyPredicate, keyValues, type ResolvedTable, type RowKey } from './table-spec.js';

/**
 * Seeded rows of one table in tenants A and B, and the attacks against them. Made by
 * {@link prepareTableProbe}; each `run` is independent (snapshot, attack, snapshot).
 */
export interface TableProbe {
  readonly table: ResolvedTable;
  /** Keys of the rows seeded in tenant A (the targets). */
  readonly keysA: readonly RowKey[];
  /** Keys of the rows seeded in tenant B (the intruder's own). */
  readonly keysB: readonly RowKey[];
  /** Runs one attack and reports every way it got through. */
  run(kind: TableAttemptKind, actor: Actor): Promise<AttemptResult>;
  /** Seeds one more row for `party` (e.g. a row a route's control request may change or delete). */
  seedRow(party: IsolationTenant): Promise<RowKey>;
  /** Deletes the rows the probe seeded (through the privileged connection). */
  cleanup(): Promise<void>;
}

/**
 * Seeds `table.rowsPerTenant` rows in tenant A and one in tenant B, then checks the set-up
 * itself, so that a green run means something: the privileged connection sees the rows, no
 * key of A exists in B, and tenant A reads its own rows through the pool (the control). Throws
 * `CONFIGURATION_ERROR` otherwise.
 */
export async function prepareTableProbe<User>(
  table: ResolvedTable<User>,
  context: IsolationContext<User>,
): Promise<TableProbe> {
  const { pool, privileged, tenantA, tenantB } = context;
  const A = tenantA.tenant.id;
  const B = tenantB.tenant.id;
  const tt = tenantOut(table);
  const seeded: Array<{ key: RowKey }> = [];
  let counter = 0;

  const columnsOf = async (): Promise<string[]> => {
    // every column an INSERT may name: not dropped, not generated, not GENERATED ALWAYS AS IDENTITY
    const { rows } = await privileged.query(
      `select attname::text as name from pg_attribute
        where attrelid = $1::regclass and attnum > 0 and not attisdropped and attgenerated = '' and attidentity <> 'a'
        order by attnum`,
      [table.name],
    );
    return rows.map((r: { name: string }) => r.name);
  };

  const canonicalKey = async (tenant: string, raw: Record<string, unknown>, who: string): Promise<RowKey> => {
    const values = table.idColumns.map((c) => {
      const v = raw[c];
      if (v === undefined || v === null)
        throw new ConfigurationError(
          `table ${table.name}: the seed for ${who} returned no ${c} (return the id columns ${table.idColumns.join(', ')})`,
        );
      return v instanceof Date ? v.toISOString() : String(v);
    });
    const { rows } = await privileged.query(
      `select ${table.idSql.map((c, i) => `${c}::text as ${quoteIdent(table.idColumns[i]!)}`).join(', ')} from ${table.sql}
        where ${keyPredicate(table, 2)} and ${table.tenantSql} = $1`,
      [tenant, ...values],
    );
    if (rows.length !== 1) {
      throw new ConfigurationError(
        `table ${table.name}: the row seeded for ${who} is not visible to the privileged connection in that tenant (${rows.length} rows): ` +
          'pass the owner role or a superuser as `privileged`, and seed the tenant in context',
      );
    }
    return rows[0] as RowKey;
  };

  const seedRow = async (party: IsolationTenant<User>): Promise<RowKey> => {
    const tenant = party.tenant.id;
    const who = tenant === A ? 'tenant A' : tenant === B ? 'tenant B' : `tenant ${tenant}`;
    const index = counter++;
    let raw: Record<string, unknown>;
    if (table.spec.seed) {
      const seed = table.spec.seed;
      raw = await runAs(tenant, () => seed({ party, pool, privileged, index }));
    } else {
      const values = { [table.tenantColumn]: tenant, ...table.spec.columns!(party, index) };
      const names = Object.keys(values);
      const { rows } = await runAs(tenant, () =>
        pool.query(
          `insert into ${table.sql} (${names.map((n) => quoteIdent(n, 'column')).join(', ')}) values (${names.map((_, i) => `$${i + 1}`).join(', ')})
           returning ${table.idSql.map((c, i) => `${c}::text as ${quoteIdent(table.idColumns[i]!)}`).join(', ')}`,
          Object.values(values),
        ),
      );
      raw = rows[0] as Record<string, unknown>;
    }
    const key = await canonicalKey(tenant, raw ?? {}, who);
    seeded.push({ key });
    return key;
  };

  // by key in either tenant: a leaking attack may have moved a seeded row from one to the other
  const cleanup = async (): Promise<void> => {
    for (const { key } of seeded.splice(0).reverse()) {
      await privileged.query(
        `delete from ${table.sql} where ${keyPredicate(table, 2)} and ${table.tenantSql} = any($1::uuid[])`,
        [[A, B], ...keyValues(table, key)],
      );
    }
  };

  const keysA: RowKey[] = [];
  const keysB: RowKey[] = [];
  try {
    for (let i = 0; i < table.rowsPerTenant; i++) keysA.push(await seedRow(tenantA));
    keysB.push(await seedRow(tenantB));

    // a key of A that also exists in B would make "B reached it" ambiguous
    for (const key of keysA) {
      const { rows } = await privileged.query(
        `select 1 from ${table.sql} where ${keyPredicate(table, 2)} and ${table.tenantSql} = $1`,
        [B, ...keyValues(table, key)],
      );
      if (rows.length > 0)
        throw new ConfigurationError(
          `table ${table.name}: a row seeded in tenant A has the same id columns as a row of tenant B: seed distinct rows`,
        );
    }

    // the control: without it, a pool that never sets the tenant would pass every attack
    for (const key of keysA) {
      const own = await runAs(A, () =>
        pool.query(`select ${tt} from ${table.sql} where ${keyPredicate(table, 1)}`, keyValues(table, key)),
      ).catch((error: unknown) => {
        const code = errorCode(error);
        const hint =
          code === 'TENANT_SCOPE_MISSING' ? ': the pool has a query guard in enforce mode; pass one without it' : '';
        throw new ConfigurationError(
          `table ${table.name}: control failed: tenant A cannot read its own row through the pool (${code ?? String(error)})${hint}`,
          error,
        );
      });
      if (own.rows.length !== 1 || own.rows[0][TENANT_OUT] !== A) {
        throw new ConfigurationError(
          `table ${table.name}: control failed: tenant A cannot read its own row through the pool (${own.rows.length} rows). ` +
            'The pool does not apply the tenant, or the table is not registered for the app role: every attack would pass for the wrong reason',
        );
      }
    }
  } catch (error) {
    await cleanup();
    throw error;
  }

  const columns = await columnsOf();
  const rowOfA = async (): Promise<string> => {
    for (const key of keysA) {
      const { rows } = await privileged.query(
        `select to_jsonb(x)::text as row from ${table.sql} x where ${keyPredicate(table, 2)} and ${table.tenantSql} = $1`,
        [A, ...keyValues(table, key)],
      );
      if (rows[0]) return rows[0].row as string;
    }
    throw new ConfigurationError(
      `table ${table.name}: tenant A's seeded rows are gone: an earlier attempt deleted them (see the first failure)`,
    );
  };

  const existsIn = async (tenant: string, key: RowKey): Promise<boolean> => {
    const { rows } = await privileged.query(
      `select 1 from ${table.sql} where ${keyPredicate(table, 2)} and ${table.tenantSql} = $1`,
      [tenant, ...keyValues(table, key)],
    );
    return rows.length > 0;
  };

  const statementsFor = async (kind: TableAttemptKind, actorTenant: string | undefined): Promise<AttackStatement[]> => {
    switch (kind) {
      case 'read':
      case 'update':
      case 'delete':
        return keyedStatements(table, kind, keysA, { tenantA: A, withTenant: true, actorTenant });
      case 'list':
        return listStatements(table, A);
      case 'insert': {
        const names = columns.map((c) => quoteIdent(c, 'column')).join(', ');
        return [
          {
            label: "insert a copy of A's row (tenant A)",
            sql: `insert into ${table.sql} (${names}) select ${names} from jsonb_populate_record(null::${table.sql}, $1::jsonb)`,
            values: [await rowOfA()],
            refusal: 'policy',
          },
        ];
      }
      case 'move':
        return keysB.map((key) => ({
          label: "update B's own row's tenant column to A",
          sql: `update ${table.sql} set ${table.tenantSql} = $1 where ${keyPredicate(table, 2)}`,
          values: [A, ...keyValues(table, key)],
          refusal: 'policy' as const,
        }));
      case 'guess': {
        const candidates = guessKeys(table, [...keysA, ...keysB]);
        const guesses: RowKey[] = [];
        // B may touch its own rows: only keys outside the actor's tenant are attacks
        for (const key of candidates) if (!actorTenant || !(await existsIn(actorTenant, key))) guesses.push(key);
        // with no tenant, B's rows are targets too
        return [...keysA, ...(actorTenant ? [] : keysB), ...guesses].flatMap((key) =>
          (['read', 'update', 'delete'] as const)
            .flatMap((k) => keyedStatements(table, k, [key], { tenantA: A, withTenant: false, actorTenant }))
            .map((s) => ({ ...s, label: `${s.label.replace(/ \(row 1\)$/, '')} [${describeKey(key)}]` })),
        );
      }
    }
  };

  const describeKey = (key: RowKey): string => {
    const i = keysA.findIndex((k) => sameKey(table, k, key));
    if (i >= 0) return `A's row ${i + 1}`;
    return keysB.some((k) => sameKey(table, k, key)) ? "B's row" : 'guessed id';
  };

  return {
    table,
    keysA,
    keysB,
    seedRow,
    async run(kind, actor) {
      // each attack starts from the seeded state: an earlier leak may have deleted or moved the targets
      for (const [keys, tenant, party] of [
        [keysA, A, tenantA],
        [keysB, B, tenantB],
      ] as const) {
        for (let i = 0; i < keys.length; i++) if (!(await existsIn(tenant, keys[i]!))) keys[i] = await seedRow(party);
      }
      const actorTenant = actor === 'tenant-b' ? B : undefined;
      const as = <T>(fn: () => T): T => (actorTenant ? runAs(actorTenant, fn) : runWithoutTenant(fn));
      const statements = await statementsFor(kind, actorTenant);
      const before = await snapshotRows(privileged, table, actorTenant);
      const leaks: string[] = [];
      for (const s of statements) {
        let result: SqlResult | undefined;
        let failure: unknown;
        try {
          result = await as(() => pool.query(s.sql, s.values));
        } catch (error) {
          failure = error;
        }
        const leak = judgeStatement(s, result, failure, actorTenant);
        if (leak) leaks.push(`${table.name}: ${leak}`);
      }
      const change = diffSnapshots(table, before, await snapshotRows(privileged, table, actorTenant));
      if (change) leaks.push(change);
      return { attempt: `${table.name} ${kind}`, actor, tries: statements.length, leaks };
    },
    cleanup,
  };
}

function sameKey(table: ResolvedTable, a: RowKey, b: RowKey): boolean {
  return table.idColumns.every((c) => a[c] === b[c]);
}
