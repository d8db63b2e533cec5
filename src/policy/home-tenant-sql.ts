/**
 * The signed context's format check (plpgsql, `v` holds the value): <uuid>.<expiry>[.<route>].<hex
 * hmac> is 103..134 characters. No bounded repetitions ({64}): PostgreSQL's regex engine pays for
 * them on every match; the HMAC proves the value.
 */
export const SIGNED_FORMAT_CHECK = `  IF length(v) NOT BETWEEN 103 AND 134 OR v !~ '^[0-9a-f-]+\\.[0-9]+(\\.[0-9]+)?\\.[0-9a-f]+$' OR substr(v, length(v) - 64, 1) <> '.' THEN
    RAISE EXCEPTION 'tenantry: malformed tenant context' USING ERRCODE = 'TR001';
  END IF;`;

/**
 * The signed context's proof (plpgsql, `v` the value, `k` a record with the key's ipad and opad):
 * the HMAC, compared as hex text (a value that is not hex never reaches decode() to fail another
 * way), then the expiry.
 */
export const SIGNED_PROOF_CHECK = `  IF encode(sha256(k.opad || sha256(k.ipad || convert_to(left(v, length(v) - 65), 'UTF8'))), 'hex') <> right(v, 64) THEN
    RAISE EXCEPTION 'tenantry: tenant context signature invalid' USING ERRCODE = 'TR001';
  END IF;
  IF split_part(v, '.', 2)::bigint < extract(epoch FROM now()) THEN
    RAISE EXCEPTION 'tenantry: tenant context expired' USING ERRCODE = 'TR001';
  END IF;`;

/** Raised when the context key is missing (plpgsql, after a SELECT … INTO k). */
export const NO_CONTEXT_KEY = `  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no context key installed' USING ERRCODE = 'TR002',
      HINT = 'run tenantry install with a context secret';
  END IF;`;

/**
 * `tenantry.home_tenant_id()`: the tenant in context, proven like `current_tenant_id()` (the
 * signature and expiry in signed mode) but WITHOUT the route check.
 *
 * The route check exists because a tenant's rows move: a statement sent on a stale route must not
 * read or write the copy a move left behind. Some tenant tables never move: Tenantry's own
 * identity tables (sessions, API keys, grants, audit log) and the application's pinned tables
 * (`tenantry.pin_tenant_table`, e.g. memberships), which stay in the home database whatever the
 * tenant's tier. Their policies use this function, so the control plane keeps working for a
 * tenant that lives in its own schema, database or cluster (where the home database answers
 * every route-checked statement of that tenant with TR003).
 *
 * `contextSetting` is the custom setting the pools write (CONTEXT_SETTING).
 */
export function homeTenantFunctionSql(mode: 'signed' | 'unsigned', contextSetting: string): string {
  if (mode === 'unsigned') {
    // inlined into the statement: no lookup, as cheap as reading the setting
    return `
CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $body$
  SELECT nullif(split_part(current_setting('${contextSetting}', true), '.', 1), '')::uuid
$body$;`;
  }
  return `
CREATE OR REPLACE FUNCTION tenantry.home_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v text := current_setting('${contextSetting}', true);
  k record;
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN NULL;
  END IF;
  -- the format and proof of current_tenant_id(), without its route check
${SIGNED_FORMAT_CHECK}
  SELECT c.ipad, c.opad INTO k FROM tenantry_private.context_key c;
${NO_CONTEXT_KEY}
${SIGNED_PROOF_CHECK}
  RETURN left(v, 36)::uuid;
END
$fn$;`;
}
