import { CONTEXT_SETTING, signedContextFunctionSql } from '../../src/policy/install-sql.js';

/** A formulation of `tenantry.current_tenant_id()` for signed mode, tried by the study. */
export interface SignedCandidate {
  name: string;
  note: string;
  /** Statements run as the owner role; the last one (re)defines tenantry.current_tenant_id(). */
  sql: string;
  /** Only the per-call cost (the value it accepts is fixed: no throughput turn). */
  microOnly?: boolean;
}

/** Core 005's signed check (still the installed one): PL/pgSQL SECURITY DEFINER with `SET search_path`. */
export const PLPGSQL_005 = signedContextFunctionSql(5);

/**
 * The same checks, errors and SQLSTATEs as a SQL-standard body (PostgreSQL 14+): parsed when
 * created, every name bound to its object then, so no run-time search_path can redirect it and
 * no `SET search_path` clause (a GUC save/restore per call) is needed. Errors come from a
 * private PL/pgSQL helper that only the failure paths reach (it is VOLATILE: never folded early).
 */
export const SQL_STANDARD_BODY = `
CREATE OR REPLACE FUNCTION tenantry_private.reject_context(code text, message text) RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF code = 'TR002' THEN
    RAISE EXCEPTION USING ERRCODE = 'TR002', MESSAGE = message, HINT = 'run tenantry install with a context secret';
  END IF;
  RAISE EXCEPTION USING ERRCODE = 'TR001', MESSAGE = message;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.reject_context(text, text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN length(c.v) NOT BETWEEN 103 AND 114 OR c.v !~ '^[0-9a-f-]+\\.[0-9]+\\.[0-9a-f]+$'
      THEN tenantry_private.reject_context('TR001', 'tenantry: malformed tenant context')
    WHEN k.ipad IS NULL THEN tenantry_private.reject_context('TR002', 'tenantry: no context key installed')
    WHEN encode(sha256(k.opad || sha256(k.ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') <> right(c.v, 64)
      THEN tenantry_private.reject_context('TR001', 'tenantry: tenant context signature invalid')
    WHEN split_part(c.v, '.', 2)::bigint < extract(epoch FROM now())
      THEN tenantry_private.reject_context('TR001', 'tenantry: tenant context expired')
    ELSE left(c.v, 36)::uuid
  END
  FROM (SELECT current_setting('${CONTEXT_SETTING}', true) AS v) c
  LEFT JOIN tenantry_private.context_key k ON true;
END;`;

/**
 * The design tried for core 006 (issue 15) and measured slower (docs/benchmarks.md, issue 15): the same
 * checks as the installed PL/pgSQL function as a SECURITY DEFINER SQL-standard body (`BEGIN
 * ATOMIC`: names bound at creation, no SET clause), failures raised by a PL/pgSQL helper.
 */
export const SQL_STANDARD_BODY_FULL = `
CREATE OR REPLACE FUNCTION tenantry_private.refuse_context(p_reason text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_reason = 'no key' THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  ELSIF p_reason = 'signature' THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  ELSIF p_reason = 'expired' THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.refuse_context(text) FROM PUBLIC;
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN length(c.v) NOT BETWEEN 103 AND 134 OR c.v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$'
         OR substr(c.v, length(c.v) - 64, 1) <> '.'
      THEN tenantry_private.refuse_context('malformed')
    WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
    -- the current key first; while a rotation's overlap lasts, the previous key too
    WHEN encode(sha256(k.opad || sha256(k.ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') <> right(c.v, 64)
         AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
                  AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') = right(c.v, 64))
      THEN tenantry_private.refuse_context('signature')
    WHEN split_part(c.v, '.', 2)::bigint < extract(epoch FROM now()) THEN tenantry_private.refuse_context('expired')
    WHEN i.status IS NOT NULL THEN tenantry.refuse_inactive(i.status)
    WHEN l.state IS NULL THEN
      CASE WHEN CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END <> 0
                OR NOT coalesce(r.serves_default, false)
           THEN tenantry.refuse_route('moved') ELSE left(c.v, 36)::uuid END
    WHEN l.state <> 'active'
         OR l.epoch <> CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END
      THEN tenantry.refuse_route(l.state)
    ELSE left(c.v, 36)::uuid
  END
    FROM (SELECT current_setting('tenantry.context', true) AS v) c
    LEFT JOIN (SELECT ck.ipad, ck.opad, ck.previous_ipad, ck.previous_opad, ck.previous_until
                 FROM tenantry_private.context_key ck LIMIT 1) k ON true
    LEFT JOIN (SELECT lr.serves_default FROM tenantry.local_route lr LIMIT 1) r ON true
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(c.v, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key = left(c.v, 36);
END;`;

/**
 * The same with scalar sub-selects instead of joins: each is planned on its own (no join
 * search) and run only when its branch is reached. Same errors and SQLSTATEs as installed.
 */
export const SQL_BODY_SUBSELECTS = `
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
BEGIN ATOMIC
  SELECT CASE
    WHEN c.v IS NULL OR c.v = '' THEN NULL::uuid
    WHEN length(c.v) NOT BETWEEN 103 AND 134 OR c.v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$'
         OR substr(c.v, length(c.v) - 64, 1) <> '.'
      THEN tenantry_private.refuse_context('malformed')
    ELSE (SELECT CASE
      WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
      WHEN encode(sha256(k.opad || sha256(k.ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') <> right(c.v, 64)
           AND NOT (k.previous_until IS NOT NULL AND k.previous_until > now()
                    AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || convert_to(left(c.v, length(c.v) - 65), 'UTF8'))), 'hex') = right(c.v, 64))
        THEN tenantry_private.refuse_context('signature')
      WHEN split_part(c.v, '.', 2)::bigint < extract(epoch FROM now()) THEN tenantry_private.refuse_context('expired')
      WHEN (SELECT i.status FROM tenantry.inactive_tenants i WHERE i.tenant_key = left(c.v, 36)) IS NOT NULL
        THEN tenantry.refuse_inactive((SELECT i.status FROM tenantry.inactive_tenants i WHERE i.tenant_key = left(c.v, 36)))
      ELSE (SELECT CASE
        WHEN l.state IS NULL THEN
          CASE WHEN CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END <> 0
                    OR NOT coalesce((SELECT lr.serves_default FROM tenantry.local_route lr LIMIT 1), false)
               THEN tenantry.refuse_route('moved') ELSE left(c.v, 36)::uuid END
        WHEN l.state <> 'active'
             OR l.epoch <> CASE WHEN split_part(c.v, '.', 4) = '' THEN 0 ELSE split_part(c.v, '.', 3)::bigint END
          THEN tenantry.refuse_route(l.state)
        ELSE left(c.v, 36)::uuid END
        FROM (SELECT 1) one LEFT JOIN tenantry.local_tenants l ON l.tenant_key = left(c.v, 36))
    END FROM (SELECT 1) one LEFT JOIN (SELECT ck.ipad, ck.opad, ck.previous_ipad, ck.previous_opad, ck.previous_until
                                         FROM tenantry_private.context_key ck LIMIT 1) k ON true)
  END
    FROM (SELECT current_setting('${CONTEXT_SETTING}', true) AS v) c;
END;`;

/** Candidates after the installed function (core 005's PL/pgSQL check, read from the database). */
export const SIGNED_CANDIDATES: SignedCandidate[] = [
  {
    name: 'without-inactive-hold',
    note: 'core 002: PL/pgSQL + SET clause, without the inactive-tenant probe (tenantry.inactive_tenants)',
    sql: signedContextFunctionSql(2),
  },
  {
    name: 'sql-standard-body',
    note: 'tried for core 006: the same checks (route, hold) as a SQL-standard body, no SET clause',
    sql: SQL_STANDARD_BODY_FULL,
  },
  {
    name: 'sql-body-subselects',
    note: 'as sql-standard-body, with scalar sub-selects instead of one join (no join search when planned)',
    sql: SQL_BODY_SUBSELECTS,
  },
  {
    name: 'installed-without-set',
    note: 'reference only (NOT safe): the installed function without its SET search_path clause, what the clause costs',
    sql: PLPGSQL_005.replace('SET search_path = pg_catalog, pg_temp\n', ''),
  },
  {
    name: 'sql-standard-body-no-route',
    note: 'reference: SQL-standard body without the route check and the hold (what those two add)',
    sql: SQL_STANDARD_BODY,
  },
];

/**
 * Raises the context errors of the signed check for the SQL bodies below (only their failure
 * paths reach it). PL/pgSQL with a pinned search_path; STABLE (never folded while planning).
 */
export const REFUSE_CONTEXT_HELPER = `
CREATE OR REPLACE FUNCTION tenantry_private.refuse_context(p_reason text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF p_reason = 'no key' THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  ELSIF p_reason = 'signature' THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  ELSIF p_reason = 'expired' THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;
  RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_private.refuse_context(text) FROM PUBLIC;`;

/**
 * Candidate (i) of issue 15: a plain-string LANGUAGE sql body, SECURITY DEFINER, no SET clause.
 * Parsed when first called in a statement, through the caller's search_path, so every name is
 * schema-qualified (functions, types, operators spelled OPERATOR(pg_catalog.=)) and no construct
 * that looks an operator up by name is used (BETWEEN, NULLIF, IS DISTINCT FROM, IN, LIKE, regex):
 * with no CREATE and no TEMP for the app role nothing can be planted anyway, and nothing planted
 * would be called. No format regex: length and separator positions, then the HMAC over the text;
 * only a proven value is cast.
 */
export const SQL_NO_SET = `${REFUSE_CONTEXT_HELPER}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
  SELECT CASE
    WHEN c.v IS NULL OR c.v OPERATOR(pg_catalog.=) ''::pg_catalog.text THEN NULL::pg_catalog.uuid
    WHEN pg_catalog.length(c.v) OPERATOR(pg_catalog.<) 103 OR pg_catalog.length(c.v) OPERATOR(pg_catalog.>) 134
         OR pg_catalog.substr(c.v, 37, 1) OPERATOR(pg_catalog.<>) '.'::pg_catalog.text
         OR pg_catalog.substr(c.v, pg_catalog.length(c.v) OPERATOR(pg_catalog.-) 64, 1) OPERATOR(pg_catalog.<>) '.'::pg_catalog.text
      THEN tenantry_private.refuse_context('malformed')
    WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
    WHEN pg_catalog.encode(pg_catalog.sha256(k.opad OPERATOR(pg_catalog.||) pg_catalog.sha256(k.ipad OPERATOR(pg_catalog.||) pg_catalog.convert_to(pg_catalog."left"(c.v, pg_catalog.length(c.v) OPERATOR(pg_catalog.-) 65), 'UTF8'))), 'hex') OPERATOR(pg_catalog.<>) pg_catalog."right"(c.v, 64)
         AND NOT (k.previous_until IS NOT NULL AND k.previous_until OPERATOR(pg_catalog.>) pg_catalog.now()
                  AND pg_catalog.encode(pg_catalog.sha256(k.previous_opad OPERATOR(pg_catalog.||) pg_catalog.sha256(k.previous_ipad OPERATOR(pg_catalog.||) pg_catalog.convert_to(pg_catalog."left"(c.v, pg_catalog.length(c.v) OPERATOR(pg_catalog.-) 65), 'UTF8'))), 'hex') OPERATOR(pg_catalog.=) pg_catalog."right"(c.v, 64))
      THEN tenantry_private.refuse_context('signature')
    WHEN pg_catalog.split_part(c.v, '.', 2)::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now())
      THEN tenantry_private.refuse_context('expired')
    WHEN i.status IS NOT NULL THEN tenantry.refuse_inactive(i.status)
    WHEN l.state IS NULL THEN
      CASE WHEN CASE WHEN pg_catalog.split_part(c.v, '.', 4) OPERATOR(pg_catalog.=) ''::pg_catalog.text THEN 0::pg_catalog.int8
                     ELSE pg_catalog.split_part(c.v, '.', 3)::pg_catalog.int8 END OPERATOR(pg_catalog.<>) 0::pg_catalog.int8
                OR NOT r.serves_default
           THEN tenantry.refuse_route('moved') ELSE pg_catalog."left"(c.v, 36)::pg_catalog.uuid END
    WHEN l.state OPERATOR(pg_catalog.<>) 'active'::pg_catalog.text
         OR l.epoch OPERATOR(pg_catalog.<>) CASE WHEN pg_catalog.split_part(c.v, '.', 4) OPERATOR(pg_catalog.=) ''::pg_catalog.text THEN 0::pg_catalog.int8
                                                ELSE pg_catalog.split_part(c.v, '.', 3)::pg_catalog.int8 END
      THEN tenantry.refuse_route(l.state)
    ELSE pg_catalog."left"(c.v, 36)::pg_catalog.uuid
  END
    FROM (SELECT pg_catalog.current_setting('tenantry.context', true) AS v) c
    LEFT JOIN tenantry_private.context_key k ON true
    LEFT JOIN tenantry.local_route r ON true
    LEFT JOIN tenantry.local_tenants l ON l.tenant_key OPERATOR(pg_catalog.=) pg_catalog."left"(c.v, 36)
    LEFT JOIN tenantry.inactive_tenants i ON i.tenant_key OPERATOR(pg_catalog.=) pg_catalog."left"(c.v, 36)
$fn$;`;

/** Reference: SQL_NO_SET without the route check and the hold (what those lookups add). */
export const SQL_NO_SET_KEY_ONLY = `${REFUSE_CONTEXT_HELPER}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE sql STABLE SECURITY DEFINER PARALLEL SAFE
AS $fn$
  SELECT CASE
    WHEN c.v IS NULL OR c.v OPERATOR(pg_catalog.=) ''::pg_catalog.text THEN NULL::pg_catalog.uuid
    WHEN pg_catalog.length(c.v) OPERATOR(pg_catalog.<) 103 OR pg_catalog.length(c.v) OPERATOR(pg_catalog.>) 134
         OR pg_catalog.substr(c.v, 37, 1) OPERATOR(pg_catalog.<>) '.'::pg_catalog.text
         OR pg_catalog.substr(c.v, pg_catalog.length(c.v) OPERATOR(pg_catalog.-) 64, 1) OPERATOR(pg_catalog.<>) '.'::pg_catalog.text
      THEN tenantry_private.refuse_context('malformed')
    WHEN k.ipad IS NULL THEN tenantry_private.refuse_context('no key')
    WHEN pg_catalog.encode(pg_catalog.sha256(k.opad OPERATOR(pg_catalog.||) pg_catalog.sha256(k.ipad OPERATOR(pg_catalog.||) pg_catalog.convert_to(pg_catalog."left"(c.v, pg_catalog.length(c.v) OPERATOR(pg_catalog.-) 65), 'UTF8'))), 'hex') OPERATOR(pg_catalog.<>) pg_catalog."right"(c.v, 64)
      THEN tenantry_private.refuse_context('signature')
    WHEN pg_catalog.split_part(c.v, '.', 2)::pg_catalog.int8 OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', pg_catalog.now())
      THEN tenantry_private.refuse_context('expired')
    ELSE pg_catalog."left"(c.v, 36)::pg_catalog.uuid
  END
    FROM (SELECT pg_catalog.current_setting('tenantry.context', true) AS v) c
    LEFT JOIN tenantry_private.context_key k ON true
$fn$;`;

/**
 * PL/pgSQL as installed, with the format regex replaced by length and separator checks and the
 * whole check in ONE query (one SPI execution, one simple expression less per step). With and
 * without the SET clause (without: every name qualified, as SQL_NO_SET).
 */
function plpgsqlLean(withSet: boolean): string {
  return `${REFUSE_CONTEXT_HELPER}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
${withSet ? 'SET search_path = pg_catalog, pg_temp\n' : ''}AS $fn$
DECLARE
  r pg_catalog.uuid;
BEGIN
  SELECT ${SQL_NO_SET.slice(SQL_NO_SET.indexOf('CASE\n'), SQL_NO_SET.lastIndexOf('$fn$'))} INTO r;
  RETURN r;
END
$fn$;`;
}
export const PLPGSQL_LEAN_SET = plpgsqlLean(true);
export const PLPGSQL_LEAN_NO_SET = plpgsqlLean(false);

/**
 * Candidate (iii), reference only: no definer call at all. The context is a random per-tenant
 * token; the check is the lookup of its SHA-256 in a table the app role may read. What one
 * indexed lookup per statement costs (no route check, no hold, no issuance design: see the notes).
 */
export const TOKEN_LOOKUP = `
CREATE TABLE IF NOT EXISTS tenantry.context_tokens (token_sha256 bytea PRIMARY KEY, tenant_id uuid NOT NULL, expires_at timestamptz NOT NULL);
GRANT SELECT ON tenantry.context_tokens TO PUBLIC;
ALTER TABLE tenantry.context_tokens DISABLE ROW LEVEL SECURITY;
INSERT INTO tenantry.context_tokens
  SELECT sha256(convert_to(current_setting('tenantry.study_value'), 'UTF8')), left(current_setting('tenantry.study_value'), 36)::uuid, now() + interval '1 hour'
  ON CONFLICT DO NOTHING;
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
  SELECT t.tenant_id FROM tenantry.context_tokens t
   WHERE t.token_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('tenantry.context', true), 'UTF8'))
     AND t.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()
$fn$;`;

/** Candidates of issue 15's second pass (2026-12-06 evening). */
export const SIGNED_CANDIDATES_2: SignedCandidate[] = [
  {
    name: 'core-005',
    note: 'before core 007: PL/pgSQL + SET, key, local route, local tenants and holds in one 4-relation lookup',
    sql: PLPGSQL_005,
  },
  {
    name: 'sql-no-set',
    note: '(i) LANGUAGE sql string body, SECURITY DEFINER, no SET, all names qualified, no regex',
    sql: SQL_NO_SET,
  },
  { name: 'sql-no-set-key-only', note: 'reference: sql-no-set without route check and hold', sql: SQL_NO_SET_KEY_ONLY },
  {
    name: 'plpgsql-lean-set',
    note: 'PL/pgSQL + SET clause, the whole check as one query, no regex',
    sql: PLPGSQL_LEAN_SET,
  },
  {
    name: 'plpgsql-lean-no-set',
    note: 'as plpgsql-lean-set without the SET clause (names qualified)',
    sql: PLPGSQL_LEAN_NO_SET,
  },
  {
    name: 'token-lookup',
    note: '(iii) reference: SHA-256 of a random token looked up in an app-readable table, no definer call',
    sql: TOKEN_LOOKUP,
    microOnly: true,
  },
];

/** Core 007's check (installed until core 008 put its fast path in front). */
const PLPGSQL_007 = signedContextFunctionSql(7);
const FORMAT_REGEX = `\n     OR v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$'`;

/** Candidates of issue 15's last pass (2026-12-07): what the format check's regex costs per statement. */
export const SIGNED_CANDIDATES_3: SignedCandidate[] = [
  {
    name: 'core-007-regex-on-failure',
    note: 'core 007 with the format regex evaluated only when the proof fails (the length and separators still checked first)',
    // replacement functions: a replacement string would read the regex's `$'` as a pattern
    sql: PLPGSQL_007.replace(FORMAT_REGEX, () => '').replace(
      '  IF NOT k.signed THEN\n',
      () =>
        `  IF NOT k.signed THEN\n    IF v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$' THEN\n      RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';\n    END IF;\n`,
    ),
  },
  {
    name: 'core-007-without-set',
    note: 'reference only (NOT safe): core 007 without its SET search_path clause, what the clause costs',
    sql: PLPGSQL_007.replace('SET search_path = pg_catalog, pg_temp\n', () => ''),
  },
  {
    name: 'core-007-lookup-only',
    note: 'reference only (NOT a check): core 007 with its lookup and nothing else, what the other steps cost',
    sql: lookupOnly(PLPGSQL_007),
  },
  {
    name: 'core-007-one-test',
    note: "core 007 with one test on the way that passes (proof, expiry, hold and route folded into the lookup's columns); a value it does not pass runs core 007's steps as they are",
    sql: PLPGSQL_007.replace(
      '         c.serves_default, g.state, g.epoch, g.hold\n    INTO k\n',
      () => `         c.serves_default, g.state, g.epoch, g.hold,
         split_part(v, '.', 2)::bigint >= extract(epoch FROM now())
           AND g.hold IS NULL
           AND CASE WHEN g.state IS NULL
                    THEN c.serves_default AND split_part(v, '.', 4) = ''
                    ELSE g.state = 'active' AND g.epoch::text = (CASE WHEN split_part(v, '.', 4) = '' THEN '0' ELSE split_part(v, '.', 3) END)
               END AS passes
    INTO k
`,
    ).replace(
      '  IF NOT FOUND THEN\n',
      () => `  IF k.signed AND k.passes THEN
    RETURN left(v, 36)::uuid;
  END IF;
  IF NOT FOUND THEN\n`,
    ),
  },
];
if (!PLPGSQL_007.includes(FORMAT_REGEX) || !PLPGSQL_007.includes('  IF NOT k.signed THEN\n'))
  throw new Error('signed-candidates: core 007 no longer has the format regex where this candidate expects it');

/** A check's header and its lookup (the SELECT … INTO k statement), then the tenant id returned: nothing else of it. */
function lookupOnly(check: string): string {
  const begin = check.indexOf('BEGIN\n') + 'BEGIN\n'.length;
  const lookup = check.indexOf('  SELECT encode(', begin);
  const end = check.indexOf(';\n', lookup) + 2;
  if (begin < 6 || lookup < 0 || end < 2) throw new Error('signed-candidates: no lookup where lookupOnly expects it');
  return `${check.slice(0, begin)}${check.slice(lookup, end)}  RETURN left(v, 36)::uuid;\nEND\n$fn$;`;
}

/** Candidates of issue 15's fourth pass (2026-12-07): core 007's check, which core 008's fast path precedes. */
export const SIGNED_CANDIDATES_4: SignedCandidate[] = [
  {
    name: 'core-007',
    note: 'before core 008: core 007 as installed (each step a PL/pgSQL statement; the lookup bound to the value)',
    sql: PLPGSQL_007,
  },
];

/**
 * Issue 15, fourth pass: a cache of proven values. The first statement with a value runs the
 * whole check and records sha256(value) with the tenant, the value's expiry and the gate's epoch
 * (bumped by every hold, route or key change); later statements with the same value only look
 * the hash up. Two forms: the lookup inside the definer function (the table private), and the
 * lookup as the querying role (the table readable under a policy that shows only the row of the
 * value its own transaction holds; no definer call on the path).
 */
const PROOF_TABLES = `
CREATE TABLE IF NOT EXISTS tenantry_private.study_epoch (epoch bigint NOT NULL);
INSERT INTO tenantry_private.study_epoch SELECT 1 WHERE NOT EXISTS (SELECT FROM tenantry_private.study_epoch);
CREATE TABLE IF NOT EXISTS tenantry_private.study_proofs (value_sha256 bytea PRIMARY KEY, tenant_id uuid NOT NULL, expires_at bigint NOT NULL, epoch bigint NOT NULL);
INSERT INTO tenantry_private.study_proofs
  SELECT sha256(convert_to(current_setting('tenantry.study_value'), 'UTF8')), left(current_setting('tenantry.study_value'), 36)::uuid,
         split_part(current_setting('tenantry.study_value'), '.', 2)::bigint, 1
  ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS tenantry.study_epoch (epoch bigint NOT NULL);
INSERT INTO tenantry.study_epoch SELECT 1 WHERE NOT EXISTS (SELECT FROM tenantry.study_epoch);
GRANT SELECT ON tenantry.study_epoch TO PUBLIC;
ALTER TABLE tenantry.study_epoch DISABLE ROW LEVEL SECURITY;
CREATE TABLE IF NOT EXISTS tenantry.study_proofs (value_sha256 bytea PRIMARY KEY, tenant_id uuid NOT NULL, expires_at bigint NOT NULL, epoch bigint NOT NULL);
INSERT INTO tenantry.study_proofs SELECT * FROM tenantry_private.study_proofs ON CONFLICT DO NOTHING;
GRANT SELECT ON tenantry.study_proofs TO PUBLIC;
ALTER TABLE tenantry.study_proofs ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own_value ON tenantry.study_proofs;
CREATE POLICY own_value ON tenantry.study_proofs FOR SELECT
  USING (value_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('tenantry.context', true), 'UTF8')));
`;

export const PROOF_CACHE_DEFINER = `${PROOF_TABLES}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  passed uuid;
BEGIN
  SELECT p.tenant_id INTO passed
    FROM tenantry_private.study_proofs p JOIN tenantry_private.study_epoch e ON e.epoch = p.epoch
   WHERE p.value_sha256 = sha256(convert_to(current_setting('tenantry.context', true), 'UTF8'))
     AND p.expires_at >= extract(epoch FROM now());
  IF passed IS NULL THEN
    RAISE EXCEPTION 'study: slow path' USING ERRCODE = 'TR001';
  END IF;
  RETURN passed;
END
$fn$;`;

export const PROOF_CACHE_INVOKER = `${PROOF_TABLES}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
DECLARE
  passed pg_catalog.uuid;
BEGIN
  SELECT p.tenant_id INTO passed
    FROM tenantry.study_proofs p JOIN tenantry.study_epoch e ON e.epoch OPERATOR(pg_catalog.=) p.epoch
   WHERE p.value_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('tenantry.context', true), 'UTF8'))
     AND p.expires_at OPERATOR(pg_catalog.>=) pg_catalog.date_part('epoch', pg_catalog.now())::pg_catalog.int8;
  IF passed IS NULL THEN
    RAISE EXCEPTION 'study: slow path' USING ERRCODE = 'TR001';
  END IF;
  RETURN passed;
END
$fn$;`;

export const PROOF_CACHE_SQL_INVOKER = `${PROOF_TABLES}
CREATE OR REPLACE FUNCTION tenantry.current_tenant_id() RETURNS pg_catalog.uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
  SELECT p.tenant_id
    FROM tenantry.study_proofs p JOIN tenantry.study_epoch e ON e.epoch OPERATOR(pg_catalog.=) p.epoch
   WHERE p.value_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('tenantry.context', true), 'UTF8'))
     AND p.expires_at OPERATOR(pg_catalog.>=) pg_catalog.date_part('epoch', pg_catalog.now())::pg_catalog.int8
$fn$;`;

export const SIGNED_CANDIDATES_5: SignedCandidate[] = [
  {
    name: 'proof-cache-definer',
    note: 'cached proof looked up in the definer function (private table)',
    sql: PROOF_CACHE_DEFINER,
  },
  {
    name: 'proof-cache-invoker',
    note: 'cached proof looked up as the querying role (PL/pgSQL, table under a policy)',
    sql: PROOF_CACHE_INVOKER,
  },
  { name: 'proof-cache-sql', note: 'as proof-cache-invoker, LANGUAGE sql', sql: PROOF_CACHE_SQL_INVOKER },
];
