import type { Finding } from './finding.js';
import { appGranteesSql, scopedRows, type DoctorScope } from './doctor-scope.js';
import { bodyReferences, type NameReference } from './function-body-references.js';
import { functionBodySha256Sql, functionSignatureSql } from './reviewed-functions.js';
import { quoteLiteral } from '../identifiers.js';

interface DefinerRow {
  oid: number;
  signature: string;
  keyword: string;
  language: string;
  source: string;
  name_sql: string;
  arguments: string;
  result: string;
  search_path: string[];
  owner: string;
  owner_bypasses_rls: boolean;
  sha256: string;
  grantees: string;
  reviewed_sha256: string | null;
  reviewed_at: string | null;
  depends_on: number[];
}

interface FunctionRow {
  oid: number;
  language: string;
  source: string;
  name_sql: string;
  arguments: string;
  result: string;
  search_path: string[];
  depends_on: number[];
}

/** How deep calls from a definer function into other functions are followed. */
const CALL_DEPTH = 4;

/**
 * SECURITY DEFINER functions the app role can execute (directly, through PUBLIC or a role it is a
 * member of, in a schema it can use), outside Tenantry's own schemas and extensions: each runs
 * with its owner's rights, which in Tenantry bypass row level security, so each is a door into
 * every tenant's rows unless a reviewer says otherwise. Reported with the tenant tables it touches
 * (its body and the functions it calls, read with PostgreSQL's parser; text scan where SQL is
 * built at run time or cannot be parsed) until accepted in `tenantry.reviewed_functions` with the
 * hash of the body reviewed (`tenantry doctor accept-function`); a changed body is reported again.
 */
export async function checkDefinerReach(scope: DoctorScope): Promise<Finding[]> {
  if (!scope.appRole) return [];
  const [{ reviewed } = { reviewed: false }] = await scopedRows<{ reviewed: boolean }>(
    scope,
    `SELECT to_regclass('tenantry.reviewed_functions') IS NOT NULL AS reviewed`,
  );
  const definers = await scopedRows<DefinerRow>(
    scope,
    `, fn AS (
       SELECT p.*, ${appGranteesSql(`aclexplode(coalesce(p.proacl, acldefault('f', p.proowner)))`, `x.privilege_type = 'EXECUTE'`, 'p.proowner')} AS grantees
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.prosecdef
          -- a trigger function cannot be called, only fired by a trigger its table's owner made
          AND p.prorettype NOT IN ('trigger'::regtype, 'event_trigger'::regtype)
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantry', 'tenantry_private')
          AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
          AND (pg_has_role((SELECT oid FROM app), n.nspowner, 'MEMBER')
               OR EXISTS (SELECT FROM aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x
                           WHERE x.privilege_type = 'USAGE' AND (x.grantee = 0 OR pg_has_role((SELECT oid FROM app), x.grantee, 'MEMBER'))))
     )
     SELECT p.oid, ${functionSignatureSql('p')} AS signature, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS keyword,
            l.lanname AS language, p.prosrc AS source, quote_ident(p.proname) AS name_sql,
            pg_get_function_arguments(p.oid) AS arguments, coalesce(pg_get_function_result(p.oid), 'void') AS result,
            ${searchPathSql('p')} AS search_path,
            pg_get_userbyid(p.proowner) AS owner, (o.rolsuper OR o.rolbypassrls) AS owner_bypasses_rls,
            ${functionBodySha256Sql('p', 'l')} AS sha256, p.grantees,
            ${reviewed ? 'r.body_sha256' : 'NULL::text'} AS reviewed_sha256,
            ${reviewed ? `to_char(r.reviewed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')` : 'NULL::text'} AS reviewed_at,
            ${dependsOnSql('p')} AS depends_on
       FROM fn p
       JOIN pg_language l ON l.oid = p.prolang
       JOIN pg_roles o ON o.oid = p.proowner
       ${reviewed ? `LEFT JOIN tenantry.reviewed_functions r ON r.signature = ${functionSignatureSql('p')}` : ''}
      WHERE p.grantees IS NOT NULL
      ORDER BY 2`,
  );
  if (definers.length === 0) return [];
  const tenantTables = new Map(
    (await scopedRows<{ oid: number; name: string }>(scope, 'SELECT oid, name FROM tenant_table')).map((t) => [
      Number(t.oid),
      t.name,
    ]),
  );
  const findings: Finding[] = [];
  for (const f of definers) {
    if (f.reviewed_sha256 === f.sha256) continue;
    const reach = await tablesReached(scope, f, tenantTables);
    const touched = reach.tables.length > 0;
    const severity = f.owner_bypasses_rls && (touched || reach.unknown) ? 'error' : 'warning';
    const what = touched
      ? `touches tenant table${reach.tables.length === 1 ? '' : 's'} ${reach.tables.join(', ')}`
      : reach.unknown
        ? 'touches tables that could not be determined'
        : 'touches no tenant table';
    const how = reach.how.length > 0 ? ` (${reach.how.join('; ')})` : '';
    const owner = f.owner_bypasses_rls
      ? `its owner ${f.owner} bypasses row level security`
      : `its owner ${f.owner} is subject to row level security`;
    const changed = f.reviewed_sha256 !== null;
    findings.push({
      code: changed ? 'DEFINER_CHANGED_SINCE_REVIEW' : 'DEFINER_NOT_REVIEWED',
      severity,
      object: f.signature,
      message: `${changed ? `SECURITY DEFINER ${f.keyword.toLowerCase()} ${f.signature} changed since it was reviewed (${f.reviewed_at}): its body hash is now ${f.sha256}.` : `The application role can execute SECURITY DEFINER ${f.keyword.toLowerCase()} ${f.signature} (granted to ${f.grantees}) with its owner's rights, and ${owner}; its body hash is ${f.sha256}.`} It ${what}${how}. A definer function that reads or writes rows of other tenants than the caller's is a way around every policy: review what it returns and to whom, then accept it or make it safe.`,
      fix: `tenantry doctor accept-function ${quoteLiteral(f.signature)} --reason '<why it may reach these rows>'${changed ? '' : ` (after review), or REVOKE EXECUTE ON ${f.keyword} ${f.signature} FROM ${f.grantees};`}`,
    });
  }
  return findings;
}

/** SQL: the schemas of a function's pinned search_path (`public` when it has none: the caller's path decides then). */
function searchPathSql(p: string): string {
  return `coalesce((SELECT array_agg(btrim(s, ' "')) FROM unnest(${p}.proconfig) c,
                           unnest(string_to_array(substr(c, length('search_path=') + 1), ',')) s
                     WHERE lower(c) LIKE 'search_path=%' AND btrim(s, ' "') NOT IN ('pg_temp', '$user')), ARRAY['public'])`;
}

/** SQL: the relations a function depends on in pg_depend (a `BEGIN ATOMIC` body records them). */
function dependsOnSql(p: string): string {
  return `ARRAY(SELECT d.refobjid::int FROM pg_depend d
                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = ${p}.oid AND d.refclassid = 'pg_class'::regclass)`;
}

/** The tenant tables a function reaches: through its body, the views it names, the functions it calls. */
async function tablesReached(
  scope: DoctorScope,
  start: FunctionRow,
  tenantTables: Map<number, string>,
): Promise<{ tables: string[]; unknown: boolean; how: string[] }> {
  const relations = new Set<number>();
  const textHits = new Set<string>();
  const how = new Set<string>();
  let unknown = false;
  const seen = new Set<number>([Number(start.oid)]);
  let level: FunctionRow[] = [start];
  for (let depth = 0; depth < CALL_DEPTH && level.length > 0; depth++) {
    const next: FunctionRow[] = [];
    for (const fn of level) {
      for (const oid of fn.depends_on) relations.add(Number(oid));
      const refs = bodyReferences({
        language: fn.language,
        source: fn.source,
        nameSql: fn.name_sql,
        arguments: fn.arguments,
        result: fn.result,
      });
      if (!refs.parsed || refs.dynamic) {
        // what the parser cannot see: table names anywhere in the text, string literals included
        const hits = [...tenantTables.values()].filter((t) => mentions(fn.source, t));
        for (const t of hits) textHits.add(t);
        how.add(
          refs.dynamic
            ? 'it builds SQL at run time: tables found by a text scan of its body'
            : fn.language === 'sql' || fn.language === 'plpgsql'
              ? 'part of its body could not be parsed: tables found by a text scan'
              : `LANGUAGE ${fn.language} is not parsed: tables found by a text scan of its source`,
        );
        // SQL built at run time from a name found nowhere in the text: any table, as far as anyone can tell
        if (hits.length === 0) unknown = true;
      }
      for (const oid of await resolveRelations(scope, refs.relations, fn.search_path)) relations.add(oid);
      for (const callee of await resolveFunctions(scope, refs.calls, fn.search_path)) {
        if (seen.has(Number(callee.oid))) continue;
        seen.add(Number(callee.oid));
        next.push(callee);
      }
    }
    level = next;
  }
  if (start.search_path.length === 1 && start.search_path[0] === 'public' && start.source.trim() !== '')
    how.add("no pinned search_path: unqualified names were resolved in public, the caller's path may differ");
  const tables = new Set([...(await expandViews(scope, [...relations]))].flatMap((oid) => tenantTables.get(oid) ?? []));
  for (const t of textHits) tables.add(t);
  return { tables: [...tables].sort(), unknown, how: [...how] };
}

/** True when `source` names table `name` (`schema.table`, or its bare table name) as a word. */
function mentions(source: string, name: string): boolean {
  const table = name.slice(name.lastIndexOf('.') + 1).replace(/^"|"$/g, '');
  const escaped = table.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\w$])${escaped}(?![\\w$])`, 'i').test(source);
}

async function resolveRelations(scope: DoctorScope, refs: NameReference[], path: string[]): Promise<number[]> {
  if (refs.length === 0) return [];
  const rows = await scopedRows<{ oid: number }>(
    scope,
    `SELECT DISTINCT ON (r.i) c.oid::int AS oid
       FROM unnest($7::text[], $8::text[]) WITH ORDINALITY r(schema, rel, i)
       JOIN pg_class c ON c.relname = r.rel
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND (n.nspname = r.schema OR (r.schema IS NULL AND n.nspname = ANY ($9::text[])))
      ORDER BY r.i, array_position($9::text[], n.nspname::text)`,
    [refs.map((r) => r.schema), refs.map((r) => r.name), path],
  );
  return rows.map((r) => Number(r.oid));
}

async function resolveFunctions(scope: DoctorScope, refs: NameReference[], path: string[]): Promise<FunctionRow[]> {
  if (refs.length === 0) return [];
  // every overload of the name, in the first schema of the path that has one; Tenantry's own are known
  return scopedRows<FunctionRow>(
    scope,
    `SELECT DISTINCT ON (p.oid) p.oid::int AS oid, l.lanname AS language, p.prosrc AS source, quote_ident(p.proname) AS name_sql,
            pg_get_function_arguments(p.oid) AS arguments, coalesce(pg_get_function_result(p.oid), 'void') AS result,
            ${searchPathSql('p')} AS search_path, ${dependsOnSql('p')} AS depends_on
       FROM unnest($7::text[], $8::text[]) AS r(schema, name)
       JOIN pg_proc p ON p.proname = r.name
       JOIN pg_namespace n ON n.oid = p.pronamespace
       JOIN pg_language l ON l.oid = p.prolang
      WHERE l.lanname IN ('sql', 'plpgsql')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantry', 'tenantry_private')
        AND (n.nspname = r.schema OR (r.schema IS NULL AND n.nspname = (
              SELECT s FROM unnest($9::text[]) WITH ORDINALITY x(s, i)
               WHERE EXISTS (SELECT FROM pg_proc q JOIN pg_namespace qn ON qn.oid = q.pronamespace
                              WHERE q.proname = r.name AND qn.nspname = x.s)
               ORDER BY x.i LIMIT 1)))
      ORDER BY p.oid`,
    [refs.map((r) => r.schema), refs.map((r) => r.name), path],
  );
}

/** The relations given, plus every relation the views among them read (views of views included). */
async function expandViews(scope: DoctorScope, relations: number[]): Promise<Set<number>> {
  if (relations.length === 0) return new Set();
  const { rows } = await scope.db.query<{ oid: number }>(
    `WITH RECURSIVE reached(oid, depth) AS (
       SELECT unnest($1::oid[]), 0
       UNION
       SELECT d.refobjid, r.depth + 1
         FROM reached r
         JOIN pg_rewrite rw ON rw.ev_class = r.oid
         JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_class'::regclass
        WHERE d.refobjid <> r.oid AND r.depth < 8
     )
     SELECT DISTINCT oid::int AS oid FROM reached`,
    [relations],
  );
  return new Set(rows.map((r) => Number(r.oid)));
}
