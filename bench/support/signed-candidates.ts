import { CONTEXT_SETTING, signedContextFunctionSql } from '../../src/policy/install-sql.js';

const SIGNED_CONTEXT_FUNCTION = signedContextFunctionSql();

/** A formulation of `tenantry.current_tenant_id()` for signed mode, tried by the study. */
export interface SignedCandidate {
  name: string;
  note: string;
  /** Statements run as the owner role; the last one (re)defines tenantry.current_tenant_id(). */
  sql: string;
}

/**
 * The proposal this study produced, now the installed function: the format check made cheap.
 * PostgreSQL's regex engine pays per match for bounded repetitions (`{64}`, `{12}`…): the former
 * pattern cost ~40-45 µs per match on this machine, about half of the function's cost.
 */
export const CHEAP_FORMAT_CHECK = SIGNED_CONTEXT_FUNCTION;

const NO_FORMAT_CHECK = CHEAP_FORMAT_CHECK.replace(
  /\n\s*-- <uuid>[^\n]*\n[^\n]*\n\s*IF length\(v\)[^\n]*\n[^\n]*\n\s*END IF;/,
  '',
);

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

/** Candidates after the installed function (which the study reads from the database). */
export const SIGNED_CANDIDATES: SignedCandidate[] = [
  {
    name: 'without-inactive-hold',
    note: 'before core 004: the same function without the inactive-tenant probe (tenantry.inactive_tenants)',
    sql: signedContextFunctionSql(2),
  },
  {
    name: 'cheap-format-check',
    note: 'proposal A: the installed PL/pgSQL function, regex without bounded repetitions + length check, hex compare',
    sql: CHEAP_FORMAT_CHECK,
  },
  { name: 'no-format-check', note: 'reference: no format check at all (HMAC alone decides)', sql: NO_FORMAT_CHECK },
  {
    name: 'sql-standard-body',
    note: 'proposal B (PostgreSQL 14+): same checks as a LANGUAGE sql BEGIN ATOMIC body, no SET clause needed',
    sql: SQL_STANDARD_BODY,
  },
];
