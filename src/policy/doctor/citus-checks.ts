import type { Finding } from './finding.js';
import { scopedRows, type DoctorScope } from './doctor-scope.js';
import { quoteLiteral } from '../identifiers.js';

/**
 * `tenantry doctor --citus`: what would stop the schema from distributing on Citus with every
 * tenant table distributed by its tenant column (`create_distributed_table(t, 'tenant_id')`,
 * colocated) and every global table made a reference table. See docs/citus.md.
 *
 * Keys without the tenant column are found by the key checks (constraint-checks.ts): in Citus
 * mode {@link citusSeverity} turns their warnings into errors. This check adds what only Citus
 * needs: exclusion constraints, foreign keys to tables that would stay local, foreign key actions
 * Citus refuses on the tenant column, global tables that reference tenant tables, and tenant
 * tables without a primary key.
 */
export async function checkCitusReadiness(scope: DoctorScope): Promise<Finding[]> {
  const referenceTables = await citusReferenceTables(scope);
  return [
    ...(await exclusionConstraints(scope)),
    ...(await foreignKeysToLocalTables(scope, referenceTables)),
    ...(await foreignKeyActionsOnTenant(scope)),
    ...(await globalTablesReferencingTenants(scope)),
    ...(await tablesWithoutPrimaryKey(scope)),
    ...(await policiesWithSubqueries(scope, await isCitusCoordinator(scope))),
    ...(await triggersOnTenantTables(scope)),
    ...(await contextTextVisible(scope)),
  ];
}

const CITUS_NOTE: Partial<Record<Finding['code'], string>> = {
  UNIQUE_WITHOUT_TENANT:
    'On Citus, create_distributed_table refuses it: a unique key must include the distribution column.',
  PRIMARY_KEY_WITHOUT_TENANT:
    'On Citus, create_distributed_table refuses it: a primary key must include the distribution column.',
  FOREIGN_KEY_WITHOUT_TENANT:
    'On Citus, a foreign key between two distributed tables must include the distribution column on both sides, at the same position.',
};

/** In Citus mode, the key findings that block `create_distributed_table` become errors, and say so. */
export function citusSeverity(finding: Finding): Finding {
  const note = CITUS_NOTE[finding.code];
  return note === undefined ? finding : { ...finding, severity: 'error', message: `${finding.message} ${note}` };
}

/** Oids of Citus reference tables, when the database is a Citus coordinator (never on plain PostgreSQL). */
async function citusReferenceTables(scope: DoctorScope): Promise<number[]> {
  const { rows } = await scope.db.query<{ citus: boolean }>(
    `SELECT to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL AS citus`,
  );
  if (!rows[0]?.citus) return [];
  // Not exercised by the tests (no Citus here): reference tables are 'n' (no distribution column) replicated with 2PC ('t')
  const ref = await scope.db.query<{ oid: number }>(
    `SELECT logicalrelid::oid AS oid FROM pg_catalog.pg_dist_partition WHERE partmethod = 'n' AND repmodel = 't'`,
  );
  return ref.rows.map((r) => r.oid);
}

async function exclusionConstraints(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    table_name: string;
    constraint_name: string;
    constraint_sql: string;
    tenant_sql: string;
    definition: string;
  }>(
    scope,
    `SELECT t.name AS table_name, con.conname AS constraint_name, quote_ident(con.conname) AS constraint_sql, t.tenant_sql,
            pg_get_constraintdef(con.oid) AS definition
       FROM tenant_table t
       JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'x'
      WHERE t.tenant_attnum IS NOT NULL
        AND NOT EXISTS (SELECT FROM generate_subscripts(con.conkey, 1) s JOIN pg_operator o ON o.oid = con.conexclop[s]
                         WHERE con.conkey[s] = t.tenant_attnum AND o.oprname = '=')
      ORDER BY t.name, con.conname`,
  );
  return rows.map((r) => ({
    code: 'CITUS_EXCLUSION_WITHOUT_TENANT',
    severity: 'error',
    object: `${r.constraint_sql} on ${r.table_name}`,
    message: `Exclusion constraint ${r.constraint_name} on ${r.table_name} does not compare the tenant column with =: Citus cannot check it within one shard, so create_distributed_table refuses it (and across tenants, a conflict tells one tenant about another's row). A GiST index compares a uuid with = only with the btree_gist extension.`,
    fix: `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}, ADD CONSTRAINT ${r.constraint_sql} ${r.definition.replace(/^EXCLUDE USING (\w+) \(/, `EXCLUDE USING $1 (${r.tenant_sql} WITH =, `)};`,
  }));
}

async function foreignKeysToLocalTables(scope: DoctorScope, referenceTables: number[]): Promise<Finding[]> {
  const rows = await scopedRows<{
    table_name: string;
    constraint_name: string;
    constraint_sql: string;
    ref_name: string;
    definition: string;
    registered: boolean;
    identity: string | null;
  }>(
    scope,
    `SELECT t.name AS table_name, con.conname AS constraint_name, quote_ident(con.conname) AS constraint_sql,
            format('%I.%I', rn.nspname, rc.relname) AS ref_name, pg_get_constraintdef(con.oid) AS definition,
            EXISTS (SELECT FROM registry r WHERE r.relid = t.oid AND r.kind = 'tenant') AS registered,
            (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
              WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '') AS identity
       FROM tenant_table t
       JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
       JOIN pg_class rc ON rc.oid = con.confrelid
       JOIN pg_namespace rn ON rn.oid = rc.relnamespace
      WHERE con.confrelid NOT IN (SELECT oid FROM tenant_table)
        AND con.confrelid NOT IN (SELECT relid FROM registry WHERE kind = 'global')
        AND con.confrelid <> ALL ($7::oid[])
      ORDER BY t.name, con.conname`,
    [referenceTables],
  );
  return rows.map((r) => {
    const table = quoteLiteral(r.table_name);
    const reference = `SELECT create_reference_table(${quoteLiteral(r.ref_name)});`;
    // create_reference_table makes a Citus local table of every table referencing the new
    // reference table, and refuses the registry's InitPlan policy there ("cannot create
    // policy"): the plain policies go first. Citus then cannot distribute that Citus local table
    // if it has an identity column ("cannot complete operation on a table with identity
    // column", seen on 13.2.2): the key is dropped while the tables are made, and added back.
    const policiesFirst = r.registered
      ? [
          `SELECT tenantry.citus_policies(${table}); -- first, as the owner role: the policies in the form Citus accepts`,
        ]
      : [];
    const fix =
      r.identity === null
        ? [
            ...policiesFirst,
            `${reference} -- ${r.table_name} becomes a Citus local table`,
            ...(r.registered ? [`SELECT tenantry.citus_tenant_table(${table}); -- then distributed`] : []),
          ]
        : [
            ...policiesFirst,
            `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}; -- identity column ${r.identity}: kept a plain table`,
            reference,
            ...(r.registered ? [`SELECT tenantry.citus_tenant_table(${table});`] : []),
            `ALTER TABLE ${r.table_name} ADD CONSTRAINT ${r.constraint_sql} ${r.definition};`,
          ];
    return {
      code: 'CITUS_FOREIGN_KEY_TO_LOCAL_TABLE',
      severity: 'error',
      object: `${r.constraint_sql} on ${r.table_name}`,
      message: `Foreign key ${r.constraint_name} from tenant table ${r.table_name} references ${r.ref_name}, which is neither a tenant table nor a registered global table, so it would stay a local table on the coordinator: Citus supports foreign keys from a distributed table only to a colocated distributed table or to a reference table. Make ${r.ref_name} a reference table on Citus (or, only if the app may read it, register it as a global table), in the order of the fix, on the Citus coordinator: create_reference_table turns ${r.table_name} into a Citus local table, which refuses a policy with a sub-select${r.identity === null ? '' : `, and a Citus local table with an identity column (${r.identity}) cannot be distributed after ("cannot complete operation on a table with identity column"): the key is dropped while the tables are made, and added back`}.`,
      fix: fix.join('\n'),
    };
  });
}

/**
 * The fix of a finding on a Citus coordinator, where it differs: FORCE ROW LEVEL SECURITY on a
 * registered tenant table is put back on the table and every shard of it by `tenantry citus
 * prepare` (Citus's own copies of the table are its shards; the setting is per shard).
 */
export function citusFix(finding: Finding, registeredTenantTables: ReadonlySet<string>): Finding {
  if (finding.code === 'TENANT_TABLE_RLS_NOT_FORCED' && registeredTenantTables.has(finding.object))
    return {
      ...finding,
      message: `${finding.message} On Citus, tenantry citus prepare puts FORCE back on the table and on its shards (a shard transfer that died lifts it: docs/citus.md).`,
      fix: `-- tenantry citus prepare (on the coordinator; or SELECT tenantry.citus_policies(${quoteLiteral(finding.object)}) as the owner role)`,
    };
  return finding;
}

// Citus refuses these actions on a foreign key that includes the distribution column: they would
// set it to NULL or a default, or cascade a change of it (src/backend/distributed/commands/foreign_constraint.c)
const DISALLOWED_ACTION =
  / ON (?:UPDATE (?:CASCADE|SET NULL|SET DEFAULT)|DELETE (?:SET NULL|SET DEFAULT))(?: \([^)]*\))?/g;

async function foreignKeyActionsOnTenant(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    table_name: string;
    constraint_name: string;
    constraint_sql: string;
    definition: string;
  }>(
    scope,
    `SELECT t.name AS table_name, con.conname AS constraint_name, quote_ident(con.conname) AS constraint_sql,
            pg_get_constraintdef(con.oid) AS definition
       FROM tenant_table t
       JOIN pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
      WHERE t.tenant_attnum = ANY (con.conkey)
        AND (con.confdeltype IN ('n', 'd') OR con.confupdtype IN ('n', 'd', 'c'))
      ORDER BY t.name, con.conname`,
  );
  return rows.map((r) => {
    const actions = (r.definition.match(DISALLOWED_ACTION) ?? []).map((a) => a.trim()).join(', ');
    return {
      code: 'CITUS_FOREIGN_KEY_ACTION',
      severity: 'error',
      object: `${r.constraint_sql} on ${r.table_name}`,
      message: `Foreign key ${r.constraint_name} on ${r.table_name} includes the tenant column and has ${actions}: Citus refuses SET NULL and SET DEFAULT actions, and ON UPDATE CASCADE, on a foreign key that includes the distribution column (even with a column list that leaves it out). The fix drops those actions (NO ACTION); do the cleanup they did in the application or a trigger.`,
      fix: `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql}, ADD CONSTRAINT ${r.constraint_sql} ${r.definition.replace(DISALLOWED_ACTION, '')};`,
    } satisfies Finding;
  });
}

async function globalTablesReferencingTenants(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{
    table_name: string;
    constraint_name: string;
    constraint_sql: string;
    ref_name: string;
  }>(
    scope,
    `SELECT format('%I.%I', n.nspname, c.relname) AS table_name, con.conname AS constraint_name, quote_ident(con.conname) AS constraint_sql,
            t.name AS ref_name
       FROM registry r
       JOIN pg_class c ON c.oid = r.relid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_constraint con ON con.conrelid = c.oid AND con.contype = 'f'
       JOIN tenant_table t ON t.oid = con.confrelid
      WHERE r.kind = 'global'
      ORDER BY 1, con.conname`,
  );
  return rows.map((r) => ({
    code: 'CITUS_GLOBAL_TABLE_REFERENCES_TENANT',
    severity: 'error',
    object: `${r.constraint_sql} on ${r.table_name}`,
    message: `Global table ${r.table_name} (a reference table on Citus, copied to every node) has foreign key ${r.constraint_name} to tenant table ${r.ref_name} (distributed): Citus refuses a foreign key from a reference table to a distributed table. Drop it, or make ${r.table_name} a tenant table.`,
    fix: `ALTER TABLE ${r.table_name} DROP CONSTRAINT ${r.constraint_sql};`,
  }));
}

async function tablesWithoutPrimaryKey(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ table_name: string; candidate: string | null }>(
    scope,
    `SELECT t.name AS table_name,
            (SELECT quote_ident(ic.relname) FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
              WHERE i.indrelid = t.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
                AND ic.relam = (SELECT oid FROM pg_am WHERE amname = 'btree')
                AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
                AND EXISTS (SELECT FROM generate_series(0, i.indnkeyatts - 1) k WHERE i.indkey[k] = t.tenant_attnum)
              ORDER BY i.indnkeyatts, ic.relname LIMIT 1) AS candidate
       FROM tenant_table t
       JOIN pg_class c ON c.oid = t.oid
      WHERE t.tenant_attnum IS NOT NULL AND c.relreplident NOT IN ('f', 'i')
        AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = t.oid AND i.indisprimary)
      ORDER BY t.name`,
  );
  return rows.map((r) => ({
    code: 'CITUS_NO_PRIMARY_KEY',
    severity: 'warning',
    object: r.table_name,
    message: `${r.table_name} has no primary key (nor another replica identity): it distributes, but Citus moves and rebalances shards with logical replication, which cannot carry an UPDATE or DELETE of a row it cannot identify: by default Citus refuses to move the shard (forced, such writes fail during the move, or all writes wait). ${r.candidate ? `The unique index ${r.candidate} includes the tenant column and can become the primary key.` : 'Best: a primary key led by the tenant column; the fix below is the fallback that logs whole rows.'}`,
    fix: r.candidate
      ? `ALTER TABLE ${r.table_name} ADD PRIMARY KEY USING INDEX ${r.candidate};`
      : `ALTER TABLE ${r.table_name} REPLICA IDENTITY FULL;`,
  }));
}

// Tenantry's InitPlan form, `(SELECT tenantry.current_tenant_id())`, and any other sub-select
const SUBQUERY = /\(\s*SELECT\b/i;
const WRAPPED_CONTEXT_CALL =
  /\(\s*SELECT\s+(tenantry\.(?:current_tenant_id|home_tenant_id|support_read_allowed)\(\))\s*(?:AS\s+\w+\s*)?\)/gi;

async function isCitusCoordinator(scope: DoctorScope): Promise<boolean> {
  const { rows } = await scope.db.query<{ citus: boolean }>(
    `SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') AS citus`,
  );
  return rows[0]?.citus === true;
}

/**
 * Sub-selects in policies of tenant tables. A registered table's InitPlan policy is reported on a
 * Citus coordinator only: off Citus, `tenantry.citus_tenant_table` (after `install --citus`)
 * rewrites it when the table is distributed, so it blocks nothing on the documented path.
 */
async function policiesWithSubqueries(scope: DoctorScope, onCitus: boolean): Promise<Finding[]> {
  const rows = await scopedRows<{
    object: string;
    table_name: string;
    policy_sql: string;
    using_expr: string | null;
    check_expr: string | null;
    registered: boolean;
  }>(
    scope,
    `SELECT format('%I on %s', p.polname, t.name) AS object, t.name AS table_name, quote_ident(p.polname) AS policy_sql,
            pg_get_expr(p.polqual, p.polrelid) AS using_expr, pg_get_expr(p.polwithcheck, p.polrelid) AS check_expr,
            EXISTS (SELECT FROM registry r WHERE r.relid = t.oid AND r.kind = 'tenant') AS registered
       FROM tenant_table t
       JOIN pg_policy p ON p.polrelid = t.oid
      WHERE t.tenant_attnum IS NOT NULL
      ORDER BY t.name, p.polname`,
  );
  const findings: Finding[] = [];
  for (const r of rows) {
    if (![r.using_expr, r.check_expr].some((e) => e !== null && SUBQUERY.test(e))) continue;
    if (r.registered && !onCitus) continue;
    const plain = (e: string | null) => (e === null ? null : e.replace(WRAPPED_CONTEXT_CALL, '$1'));
    const using = plain(r.using_expr);
    const check = plain(r.check_expr);
    const rewritable = ![using, check].some((e) => e !== null && SUBQUERY.test(e));
    findings.push({
      code: 'CITUS_POLICY_SUBQUERY',
      severity: 'error',
      object: r.object,
      message: `Policy ${r.object} has a sub-select (Tenantry's InitPlan form is one): create_distributed_table refuses it ("Subqueries are not supported in policies on distributed tables"), and so does CREATE POLICY on a distributed table. On Citus the policy calls the context function directly; the workers evaluate it in each shard query.`,
      fix: r.registered
        ? `SELECT tenantry.citus_tenant_table(${quoteLiteral(r.table_name)}); -- after tenantry install --citus: plain policies, then distributed`
        : rewritable
          ? `ALTER POLICY ${r.policy_sql} ON ${r.table_name}${using === null ? '' : ` USING (${using})`}${check === null ? '' : ` WITH CHECK (${check})`};`
          : `-- rewrite policy ${r.policy_sql} on ${r.table_name} without a sub-select (e.g. a SECURITY DEFINER function that does the lookup)`,
    });
  }
  return findings;
}

async function triggersOnTenantTables(scope: DoctorScope): Promise<Finding[]> {
  const rows = await scopedRows<{ table_name: string; trigger_name: string; trigger_sql: string }>(
    scope,
    `SELECT t.name AS table_name, tg.tgname AS trigger_name, quote_ident(tg.tgname) AS trigger_sql
       FROM tenant_table t
       JOIN pg_trigger tg ON tg.tgrelid = t.oid AND NOT tg.tgisinternal
      WHERE t.tenant_attnum IS NOT NULL
      ORDER BY t.name, tg.tgname`,
  );
  return rows.map((r) => ({
    code: 'CITUS_TRIGGER_ON_TENANT_TABLE',
    severity: 'error',
    object: `${r.trigger_sql} on ${r.table_name}`,
    message: `Tenant table ${r.table_name} has trigger ${r.trigger_name}: create_distributed_table refuses it ("triggers are not supported on distributed tables") unless citus.enable_unsafe_triggers is on, and then the trigger runs on the worker, in the shard, where other tables are shards or absent. Do its work in the application (or a statement the application sends), then drop the trigger before distributing.`,
    fix: `DROP TRIGGER ${r.trigger_sql} ON ${r.table_name};`,
  }));
}

/**
 * On a Citus coordinator, the app role's statement text must be hidden from the app role's other
 * sessions: in Citus mode the signed context value travels as the text of a `SET LOCAL`, which
 * pg_stat_activity (and citus_stat_activity) shows to every session of the same role, and which
 * pg_stat_statements keeps with `track_utility`. `install --citus` and `tenantry citus prepare`
 * set both off for the role in this database (superuser-only settings: the role cannot turn them
 * back on). Reported when the role's settings here would leave either on.
 */
async function contextTextVisible(scope: DoctorScope): Promise<Finding[]> {
  if (scope.appRole === undefined || !(await isCitusCoordinator(scope))) return [];
  const { rows } = await scope.db.query<{ name: string; value: string | null; loaded: boolean }>(
    `WITH s AS (
       SELECT split_part(c, '=', 1) AS name, substr(c, strpos(c, '=') + 1) AS value, d.setdatabase <> 0 AS here
         FROM pg_catalog.pg_db_role_setting d CROSS JOIN LATERAL unnest(d.setconfig) c
        WHERE d.setrole = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)
          AND d.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())))
     SELECT n.name,
            coalesce((SELECT s.value FROM s WHERE s.name = n.name ORDER BY s.here DESC LIMIT 1),
                     current_setting(n.name, true)) AS value,
            current_setting(n.name, true) IS NOT NULL AS loaded
       FROM (VALUES ('track_activities'), ('pg_stat_statements.track_utility')) n(name)`,
    [scope.appRole],
  );
  const on = rows.filter((r) => r.loaded && r.value !== null && !['off', 'false', '0'].includes(r.value.toLowerCase()));
  if (on.length === 0) return [];
  const names = on.map((r) => r.name);
  return [
    {
      code: 'CITUS_CONTEXT_TEXT_VISIBLE',
      severity: 'error',
      object: scope.appRole,
      message: `${names.join(' and ')} ${names.length === 1 ? 'is' : 'are'} on for the app role ${scope.appRole} in this database: in Citus mode the signed tenant context travels as the text of a SET LOCAL, and ${names.includes('track_activities') ? "pg_stat_activity (citus_stat_activity) shows it to the role's other sessions" : 'pg_stat_statements keeps it where the role reads it'}. A session of the app role (injected SQL) could copy another tenant's live value. Run tenantry citus prepare, or the statements of the fix.`,
      fix: names.map((n) => `ALTER ROLE ${scope.appSql} IN DATABASE ${scope.databaseSql} SET ${n} = off;`).join(' '),
    },
  ];
}
