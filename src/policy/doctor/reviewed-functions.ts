import type pg from 'pg';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';
import { libraryMigrations } from '../library-migrations.js';

/**
 * SQL expression: the hash a review of function `p` (pg_proc, with `l` its pg_language row) is
 * bound to. It covers what decides what the function does with its owner's rights: language,
 * SECURITY DEFINER, its SET clauses (search_path) and its body, as stored (`prosrc`, and the
 * parsed body of a `BEGIN ATOMIC` function). Not the owner's name, which differs per database
 * for the same migration.
 */
export function functionBodySha256Sql(p: string, l: string): string {
  return `encode(sha256(convert_to(concat_ws(E'\\n', ${l}.lanname, ${p}.prosecdef::text,
            coalesce(array_to_string(${p}.proconfig, E'\\n'), ''), ${p}.prosrc,
            coalesce(CASE WHEN ${p}.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(${p}.oid) END, '')), 'UTF8')), 'hex')`;
}

/**
 * SQL expression: function `p`'s signature as the allow-list keys it, `schema.name(type, …)`,
 * the same whatever the search path (types outside pg_catalog are schema-qualified).
 */
export function functionSignatureSql(p: string): string {
  return `format('%I.%I(%s)', (SELECT nspname FROM pg_namespace WHERE oid = ${p}.pronamespace), ${p}.proname,
            (SELECT coalesce(string_agg(CASE WHEN tn.nspname = 'pg_catalog' THEN format_type(t.oid, NULL)
                                             ELSE format('%I.%I', tn.nspname, t.typname) END, ', ' ORDER BY a.i), '')
               FROM unnest(${p}.proargtypes::oid[]) WITH ORDINALITY a(typ, i)
               JOIN pg_type t ON t.oid = a.typ JOIN pg_namespace tn ON tn.oid = t.typnamespace))`;
}

/**
 * The allow-list of SECURITY DEFINER functions a reviewer accepted (`tenantry doctor
 * accept-function`): one row per function, bound to the hash of the body that was reviewed, so a
 * changed body is reported again. Readable and writable by its owner only (the owner role when
 * Tenantry's owner role creates it, which migrations do).
 */
// Core migration 003_reviewed_functions.sql creates it on install. A database installed before
// that migration gets the same table from the same file when the CLI records a review there,
// then handed to the owner role (which migrations run as) when a superuser created it.
function reviewedFunctionsTableSql(): string {
  const migration = libraryMigrations().find((m) => m.feature === 'core' && m.name === 'reviewed_functions');
  if (!migration) throw new Error('tenantry: core migration reviewed_functions is missing from the package');
  return `${migration.template}
-- created by a superuser (the CLI): hand it to the owner role, which migrations run as
DO $do$
DECLARE
  owner_oid oid := (SELECT r.oid FROM tenantry.meta m JOIN pg_roles r ON r.rolname = m.value WHERE m.key = 'owner_role');
BEGIN
  IF owner_oid IS NOT NULL AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND (SELECT relowner FROM pg_class WHERE oid = 'tenantry.reviewed_functions'::regclass) <> owner_oid THEN
    EXECUTE format('ALTER TABLE tenantry.reviewed_functions OWNER TO %I', pg_get_userbyid(owner_oid));
  END IF;
END
$do$;`;
}

/** A SECURITY DEFINER function a reviewer accepted, as recorded. */
export interface ReviewedFunction {
  /** `schema.name(argument types)`, argument types outside pg_catalog schema-qualified (see {@link functionSignatureSql}). */
  signature: string;
  /** The hash of the body that was reviewed (see {@link functionBodySha256Sql}). */
  bodySha256: string;
  /** Why the function may do what it does with its owner's rights. */
  reason: string;
}

/** Options of {@link acceptDefinerFunction}. */
export interface AcceptFunctionOptions {
  /**
   * The hash of the body that was reviewed, as doctor printed it. Default: the function's current
   * body. Pass it when the review happened elsewhere (code review of a migration): a body changed
   * since then is then reported again instead of being accepted unseen.
   */
  bodySha256?: string;
}

/**
 * Records that a reviewer accepted a SECURITY DEFINER function the app role can execute, so
 * `tenantry doctor` stops reporting it until its body changes. Creates the allow-list table when
 * it is missing. Run as the owner role or a superuser.
 *
 * @example
 * await acceptDefinerFunction(ownerClient, 'app.sign_in(text, text, text, integer)', 'finds the member across tenants by email; returns only the caller\'s own membership');
 */
export async function acceptDefinerFunction(
  db: pg.ClientBase,
  signature: string,
  reason: string,
  options: AcceptFunctionOptions = {},
): Promise<ReviewedFunction> {
  if (reason.replace(/[\s\p{Cf}]/gu, '').length === 0)
    throw new InvalidArgumentError('A review needs a reason: why may this function read across tenants?', 'reason');
  if (options.bodySha256 !== undefined && !/^[0-9a-f]{64}$/.test(options.bodySha256))
    throw new InvalidArgumentError('bodySha256 must be 64 lower-case hex digits, as doctor prints it', 'bodySha256');
  const { rows } = await db.query<{ signature: string; sha256: string; definer: boolean }>(
    `SELECT ${functionSignatureSql('p')} AS signature,
            ${functionBodySha256Sql('p', 'l')} AS sha256, p.prosecdef AS definer
       FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
      WHERE p.oid = to_regprocedure($1)`,
    [signature],
  );
  const fn = rows[0];
  if (!fn)
    throw new InvalidArgumentError(
      `No function ${JSON.stringify(signature)}: give its schema, name and argument types, e.g. app.sign_in(text, integer)`,
      'signature',
    );
  if (!fn.definer)
    throw new InvalidArgumentError(`${fn.signature} is not SECURITY DEFINER: nothing to accept`, 'signature');
  const reviewed = { signature: fn.signature, bodySha256: options.bodySha256 ?? fn.sha256, reason: reason.trim() };
  await recordReviewedFunctions(db, [reviewed]);
  return reviewed;
}

/**
 * Records reviews as given (signature, hash, reason), replacing earlier reviews of the same
 * functions: how an application ships the reviews of its own migrations' functions. A review
 * whose hash does not match the function's body leaves the function reported.
 */
export async function recordReviewedFunctions(db: pg.ClientBase, reviewed: ReviewedFunction[]): Promise<void> {
  await db.query(reviewedFunctionsTableSql());
  if (reviewed.length === 0) return;
  await db.query(
    `INSERT INTO tenantry.reviewed_functions (signature, body_sha256, reason)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
     ON CONFLICT (signature) DO UPDATE
        SET body_sha256 = excluded.body_sha256, reason = excluded.reason,
            reviewed_by = current_user, reviewed_at = now()`,
    [reviewed.map((r) => r.signature), reviewed.map((r) => r.bodySha256), reviewed.map((r) => r.reason)],
  );
}
