import { CONTEXT_SETTING, signedContextFunctionSql } from '../../src/policy/install-sql.js';

/** A formulation of `tenantry.current_tenant_id()` for signed mode, tried by the study. */
export interface SignedCandidate {
  name: string;
  note: string;
  /** Statements run as the owner role; the last one (re)defines tenantry.current_tenant_id(). */
  sql: string;
}

/** Core 005's signed check: PL/pgSQL SECURITY DEFINER with `SET search_path`, the design core 006 replaced. */
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

/** Candidates after the installed function (core 006's SQL-standard body, read from the database). */
export const SIGNED_CANDIDATES: SignedCandidate[] = [
  {
    name: 'without-inactive-hold',
    note: 'core 002: PL/pgSQL + SET clause, without the inactive-tenant probe (tenantry.inactive_tenants)',
    sql: signedContextFunctionSql(2),
  },
  {
    name: 'plpgsql-005',
    note: 'core 005: PL/pgSQL SECURITY DEFINER + SET search_path, same checks as installed (route, hold)',
    sql: PLPGSQL_005,
  },
  {
    name: 'sql-standard-body-no-route',
    note: 'reference: SQL-standard body without the route check and the hold (what those two add)',
    sql: SQL_STANDARD_BODY,
  },
];
