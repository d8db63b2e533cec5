/**
 * Issue 15's token design, whole, as a bench variant (nothing in src/ or the migrations): the
 * context is a per-tenant, per-time-window token whose SHA-256 the policy looks up in a table
 * the app role may read (no SECURITY DEFINER call per statement; forging needs the preimage).
 * See docs/design-token-context.md for the design and its security analysis.
 *
 * - Issuance: the app derives token = HMAC-SHA256(token key, `tenantry-token:v1:<tenant>:<window>:<route epoch>`)
 *   (no round trip). Its hash row is written by `tenantry_token.issue(…)`, SECURITY DEFINER, which
 *   recomputes the HMAC with the key (a table the app role cannot read) and refuses otherwise, so
 *   injected SQL cannot register a token of its choosing. Once per (tenant, window, route epoch)
 *   per process; afterwards the prefix is only `set_config('tenantry.context', token, true)`.
 * - Check: the policy's own expression, one lookup by hash with `expires_at > now()`, in an
 *   InitPlan (once per statement); the row carries the refusal (hold or route) kept current by
 *   triggers, and `tenantry_token.refuse(…)` raises TR001/TR003/TR004/TR005/TR006 only when needed.
 */
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { hmacPads, type ContextEncoder } from '../../src/data/context-signer.js';
import { CONTEXT_SETTING } from '../../src/policy/install-sql.js';
import type { Check } from './explain.js';

/** The copy of `items` in the token database whose policy writes the check out (the b-token-inline variants). */
export const TOKEN_INLINE_TABLE = 'items_inline';

/** Length of a token's time window, seconds: a token is valid for its window plus the grace. */
export const TOKEN_WINDOW_SECONDS = 300;
/** After its window ends a token stays valid this long (clock skew, statements in flight). */
export const TOKEN_GRACE_SECONDS = 30;

/** The token key, derived from the context secret (its own key: a token is never a valid signed context or the reverse). */
export function tokenKeyOf(contextSecret: string): string {
  return createHmac('sha256', contextSecret).update('tenantry-token-key:v1').digest('hex');
}

export function windowOf(ms: number): number {
  return Math.floor(ms / 1000 / TOKEN_WINDOW_SECONDS);
}

/** token = HMAC-SHA256(key, `tenantry-token:v1:<tenant>:<window>:<route epoch>`), hex. */
export function tokenOf(tokenKey: string, tenant: string, window: number, routeEpoch = 0): string {
  return createHmac('sha256', tokenKey).update(`tenantry-token:v1:${tenant}:${window}:${routeEpoch}`).digest('hex');
}

/**
 * The app side: the token of the current window per (tenant, route epoch), cached for the window;
 * `needsIssue` says which (tenant, window, epoch) this process has not registered yet.
 */
export class TokenEncoder implements ContextEncoder {
  readonly #key: string;
  readonly #cache = new Map<string, { value: string; window: number }>();
  readonly #issued = new Map<string, Promise<void>>();
  readonly #done = new Set<string>();

  constructor(contextSecret: string) {
    this.#key = tokenKeyOf(contextSecret);
  }

  encode(tenantId: string, routeEpoch = 0): string {
    const window = windowOf(Date.now());
    const k = routeEpoch === 0 ? tenantId : `${tenantId}.${routeEpoch}`;
    const hit = this.#cache.get(k);
    if (hit && hit.window === window) return hit.value;
    const value = tokenOf(this.#key, tenantId, window, routeEpoch);
    if (this.#cache.size > 100_000) this.#cache.clear();
    this.#cache.set(k, { value, window });
    return value;
  }

  /**
   * Undefined when this process has registered the tenant's token of the current window, else a
   * promise that resolves once it has (one call of `issue` per (tenant, window, epoch) per process;
   * concurrent callers share it).
   */
  ensureIssued(tenantId: string, routeEpoch: number, issue: IssueCall): Promise<void> | undefined {
    const window = windowOf(Date.now());
    const k = `${tenantId}.${routeEpoch}.${window}`;
    if (this.#done.has(k)) return undefined;
    const known = this.#issued.get(k);
    if (known) return known;
    const token = this.encode(tenantId, routeEpoch);
    const p = issue(tenantId, window, routeEpoch, token).then(
      () => {
        this.#issued.delete(k);
        if (this.#done.size > 200_000) this.#done.clear();
        this.#done.add(k);
      },
      (error: unknown) => {
        this.#issued.delete(k);
        throw error;
      },
    );
    this.#issued.set(k, p);
    return p;
  }
}

export type IssueCall = (tenant: string, window: number, routeEpoch: number, token: string) => Promise<void>;

export const ISSUE_SQL = 'select tenantry_token.issue($1::uuid, $2::bigint, $3::bigint, $4::text)';

/** An IssueCall through `pool` (the app role). */
export function issueThrough(pool: pg.Pool): IssueCall {
  return async (tenant, window, routeEpoch, token) => {
    await pool.query({ name: 'tenantry_token_issue', text: ISSUE_SQL, values: [tenant, window, routeEpoch, token] });
  };
}

/** The check's CASE, without the outer parentheses: the body of tenantry_token.tenant_id() and of TOKEN_TENANT_EXPR. */
const TOKEN_CASE = `SELECT CASE
    WHEN pg_catalog.current_setting('${CONTEXT_SETTING}', true) IS NULL
      OR pg_catalog.current_setting('${CONTEXT_SETTING}', true) OPERATOR(pg_catalog.=) '' THEN NULL::pg_catalog.uuid
    ELSE COALESCE(
      (SELECT CASE WHEN t.refusal IS NULL THEN t.tenant_id ELSE tenantry_token.refuse(t.refusal) END
         FROM tenantry_token.context_tokens t
        WHERE t.token_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('${CONTEXT_SETTING}', true), 'UTF8'))
          AND t.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()),
      tenantry_token.refuse('unknown'))
  END`;

/**
 * The per-statement check, as the policy's expression. Schema-qualified names and
 * OPERATOR(pg_catalog.…) throughout (a policy's expression is bound when created; this keeps it
 * so even if the text is reused in a function). The inner sub-select is the lookup; COALESCE
 * reaches `refuse('unknown')` only when no unexpired row matches; the CASE reaches the refusal
 * only when the row carries one. Evaluated once per statement: an InitPlan.
 */
export const TOKEN_TENANT_EXPR = `(${TOKEN_CASE})`;

/** The same check as a function (tenantry_token.tenant_id()), so the statement's planner sees one call. */
export const TOKEN_TENANT_FN = '(SELECT tenantry_token.tenant_id())';

/**
 * The design's SQL, run as a superuser in a database where Tenantry is installed (signed mode:
 * its hold and route tables, tenantry_private.context_gate) and `table` is a registered tenant
 * table. Objects are owned by the owner role; the app role gets USAGE, SELECT on the token table
 * (its own token's row only, by RLS) and EXECUTE on issue/refuse.
 */
export function tokenInstallSql(o: {
  owner: string;
  app: string;
  table: string;
  inlineTable: string;
  tokenKey: string;
  rls: boolean;
  /** tenantry_token.tenant_id() as LANGUAGE sql instead of PL/pgSQL. */
  sqlFunction?: boolean;
}): string {
  const pads = hmacPads(o.tokenKey);
  const hex = (b: Buffer) => `'\\x${b.toString('hex')}'::bytea`;
  return `
CREATE SCHEMA tenantry_token AUTHORIZATION ${o.owner};
SET ROLE ${o.owner};
REVOKE ALL ON SCHEMA tenantry_token FROM PUBLIC;
GRANT USAGE ON SCHEMA tenantry_token TO ${o.app};

-- the key the app derives tokens with (HMAC pads, as tenantry_private.context_key); never readable by the app role
CREATE TABLE tenantry_token.token_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  ipad bytea NOT NULL, opad bytea NOT NULL,
  -- a rotation's overlap: tokens derived with the previous key are still registered until then
  previous_ipad bytea, previous_opad bytea, previous_until timestamptz
);
REVOKE ALL ON tenantry_token.token_key FROM PUBLIC, ${o.app};
INSERT INTO tenantry_token.token_key (ipad, opad) VALUES (${hex(pads.ipad)}, ${hex(pads.opad)});

-- hashes only: a row names a tenant, and whether it is refused, for whoever knows the preimage
CREATE TABLE tenantry_token.context_tokens (
  token_sha256 bytea PRIMARY KEY,
  tenant_id uuid NOT NULL,
  -- the route epoch the app's router claimed when the token was derived (in the HMAC's message)
  route_epoch bigint NOT NULL,
  expires_at timestamptz NOT NULL,
  -- null: serves; else why it is refused (kept current by the triggers below)
  refusal text CHECK (refusal IN ('suspended', 'deleted', 'frozen', 'moved'))
);
CREATE INDEX context_tokens_tenant ON tenantry_token.context_tokens (tenant_id);
REVOKE ALL ON tenantry_token.context_tokens FROM PUBLIC, ${o.app};
GRANT SELECT ON tenantry_token.context_tokens TO ${o.app};
${
  o.rls
    ? `-- the app role sees the row of the token its own transaction holds, nothing else
ALTER TABLE tenantry_token.context_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_token ON tenantry_token.context_tokens FOR SELECT TO PUBLIC
  USING (token_sha256 OPERATOR(pg_catalog.=) pg_catalog.sha256(pg_catalog.convert_to(pg_catalog.current_setting('${CONTEXT_SETTING}', true), 'UTF8')));`
    : `-- the open form (BENCH_TOKEN_RLS=0): the app role may read every hash, tenant and refusal. (Tenantry's
-- event trigger turned RLS on for the new table, with no policy: without one the app role reads nothing.)
ALTER TABLE tenantry_token.context_tokens DISABLE ROW LEVEL SECURITY;`
}

-- why a token of (tenant, route epoch) is refused now, from the gate core 007 keeps (hold, local
-- route) and the database's default-route flag: the same order and outcome as current_tenant_id()
CREATE FUNCTION tenantry_token.refusal_of(p_key text, p_epoch bigint) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  SELECT CASE
    WHEN g.hold IS NOT NULL THEN g.hold
    WHEN g.state IS NULL THEN CASE WHEN p_epoch <> 0 OR NOT r.serves_default THEN 'moved' END
    WHEN g.state <> 'active' THEN g.state
    WHEN g.epoch <> p_epoch THEN 'moved'
  END
  FROM tenantry.local_route r LEFT JOIN tenantry_private.context_gate g ON g.tenant_key = p_key
$fn$;
REVOKE ALL ON FUNCTION tenantry_token.refusal_of(text, bigint) FROM PUBLIC, ${o.app};

-- raised from the policy only when the row says so (or no unexpired row matched)
CREATE FUNCTION tenantry_token.refuse(p_why text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  CASE p_why
    WHEN 'suspended' THEN RAISE EXCEPTION 'tenantry: the tenant is suspended' USING ERRCODE = 'TR005';
    WHEN 'deleted' THEN RAISE EXCEPTION 'tenantry: the tenant is deleted' USING ERRCODE = 'TR006';
    WHEN 'frozen' THEN RAISE EXCEPTION 'tenantry: the tenant is frozen while it moves: retry shortly' USING ERRCODE = 'TR004';
    WHEN 'moved' THEN RAISE EXCEPTION 'tenantry: the tenant does not live here under this route: refresh the route and retry' USING ERRCODE = 'TR003';
    ELSE RAISE EXCEPTION 'tenantry: tenant context unknown or expired' USING ERRCODE = 'TR001';
  END CASE;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_token.refuse(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry_token.refuse(text) TO ${o.app};

-- issuance: registers sha256(token) for (tenant, window, route epoch) when token is the HMAC of
-- that message under the key (or the previous key during a rotation's overlap); refuses any
-- other token, and windows other than the current one and the next (clock skew, pre-issuing)
CREATE FUNCTION tenantry_token.issue(p_tenant uuid, p_window bigint, p_route_epoch bigint, p_token text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  now_window bigint := floor(extract(epoch FROM clock_timestamp()) / ${TOKEN_WINDOW_SECONDS})::bigint;
  msg bytea;
  k record;
BEGIN
  IF p_tenant IS NULL OR p_window IS NULL OR p_route_epoch IS NULL OR p_route_epoch < 0
     OR p_token IS NULL OR length(p_token) <> 64 THEN
    RAISE EXCEPTION 'tenantry: malformed token issuance' USING ERRCODE = 'TR001';
  END IF;
  IF p_window < now_window OR p_window > now_window + 1 THEN
    RAISE EXCEPTION 'tenantry: token window is not the current one' USING ERRCODE = 'TR001';
  END IF;
  msg := convert_to(format('tenantry-token:v1:%s:%s:%s', p_tenant, p_window, p_route_epoch), 'UTF8');
  SELECT * INTO k FROM tenantry_token.token_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tenantry: no token key installed' USING ERRCODE = 'TR002';
  END IF;
  -- IS NOT TRUE: with no previous key the second test is null, which must refuse too
  IF encode(sha256(k.opad || sha256(k.ipad || msg)), 'hex') <> p_token
     AND (k.previous_until > now() AND encode(sha256(k.previous_opad || sha256(k.previous_ipad || msg)), 'hex') = p_token) IS NOT TRUE THEN
    RAISE EXCEPTION 'tenantry: token proof invalid' USING ERRCODE = 'TR001';
  END IF;
  -- after a rebuild of the gate in progress, and after any change of this tenant's hold or route
  -- in progress (core 007's lock per tenant): the refusal read below is the committed one, and a
  -- change that starts later waits for this row, then its trigger updates it
  LOCK TABLE tenantry_private.context_gate IN ROW EXCLUSIVE MODE;
  PERFORM pg_advisory_xact_lock(hashtext('tenantry.context_gate'), hashtext(p_tenant::text));
  -- the tenant's expired rows go as its new one comes (the purge catches tenants gone quiet)
  DELETE FROM tenantry_token.context_tokens t WHERE t.tenant_id = p_tenant AND t.expires_at < now();
  INSERT INTO tenantry_token.context_tokens (token_sha256, tenant_id, route_epoch, expires_at, refusal)
  VALUES (sha256(convert_to(p_token, 'UTF8')), p_tenant, p_route_epoch,
          to_timestamp((p_window + 1) * ${TOKEN_WINDOW_SECONDS} + ${TOKEN_GRACE_SECONDS}),
          tenantry_token.refusal_of(p_tenant::text, p_route_epoch))
  ON CONFLICT (token_sha256) DO NOTHING;
  RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_token.issue(uuid, bigint, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry_token.issue(uuid, bigint, bigint, text) TO ${o.app};

-- holds and moves: every change of a tenant's gate row (core 007 mirrors local_tenants and
-- inactive_tenants there, in the same transaction) recomputes that tenant's token rows
CREATE FUNCTION tenantry_token.gate_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  key text;
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    -- the database's default-route flag (tenantry.local_route): every token may change
    UPDATE tenantry_token.context_tokens t SET refusal = tenantry_token.refusal_of(t.tenant_id::text, t.route_epoch)
     WHERE t.refusal IS DISTINCT FROM tenantry_token.refusal_of(t.tenant_id::text, t.route_epoch);
    RETURN NULL;
  END IF;
  FOREACH key IN ARRAY CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW.tenant_key] WHEN 'DELETE' THEN ARRAY[OLD.tenant_key]
                               ELSE ARRAY[OLD.tenant_key, NEW.tenant_key] END LOOP
    UPDATE tenantry_token.context_tokens t SET refusal = tenantry_token.refusal_of(key, t.route_epoch)
     WHERE t.tenant_id = key::uuid AND t.refusal IS DISTINCT FROM tenantry_token.refusal_of(key, t.route_epoch);
  END LOOP;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION tenantry_token.gate_changed() FROM PUBLIC, ${o.app};
CREATE TRIGGER token_refusal AFTER INSERT OR UPDATE OR DELETE ON tenantry_private.context_gate
  FOR EACH ROW EXECUTE FUNCTION tenantry_token.gate_changed();
CREATE TRIGGER token_refusal_route AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenantry.local_route
  FOR EACH STATEMENT EXECUTE FUNCTION tenantry_token.gate_changed();

-- expiry: rows past their expiry serve nothing (the lookup says expires_at > now()); this removes
-- them, for a maintenance job (the owner's), beside issue()'s removal of a tenant's own
CREATE FUNCTION tenantry_token.purge_expired() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
  WITH gone AS (DELETE FROM tenantry_token.context_tokens t WHERE t.expires_at < now() RETURNING 1) SELECT count(*) FROM gone
$fn$;
REVOKE ALL ON FUNCTION tenantry_token.purge_expired() FROM PUBLIC, ${o.app};

-- the check as a function, so that the statement's planner sees one call and the lookup's plan
-- is kept per backend. ${o.sqlFunction ? 'LANGUAGE sql (PostgreSQL 18 caches its plan; its body reads a table, so it is never inlined)' : 'PL/pgSQL (its query plan is kept per backend; a first run measured the LANGUAGE sql form slower)'};
-- not SECURITY DEFINER (it reads what the app role may read), no SET clause: every name is
-- schema-qualified and every operator OPERATOR(pg_catalog.…), and the app role has no CREATE
CREATE FUNCTION tenantry_token.tenant_id() RETURNS pg_catalog.uuid
${
  o.sqlFunction
    ? `LANGUAGE sql STABLE PARALLEL SAFE
AS $fn$
${TOKEN_CASE}
$fn$;`
    : `LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
DECLARE
  r pg_catalog.uuid;
BEGIN
  ${TOKEN_CASE} INTO r;
  RETURN r;
END
$fn$;`
}
REVOKE ALL ON FUNCTION tenantry_token.tenant_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenantry_token.tenant_id() TO ${o.app};

-- the tables' policies: the token's tenant instead of tenantry.current_tenant_id(), as the
-- function (${o.table}) and as the expression written out in the policy (${o.inlineTable})
DROP POLICY tenantry_isolation ON ${o.table};
CREATE POLICY tenantry_isolation ON ${o.table} AS PERMISSIVE FOR ALL TO PUBLIC
  USING (tenant_id OPERATOR(pg_catalog.=) ${TOKEN_TENANT_FN})
  WITH CHECK (tenant_id OPERATOR(pg_catalog.=) ${TOKEN_TENANT_FN});
DROP POLICY tenantry_isolation ON ${o.inlineTable};
CREATE POLICY tenantry_isolation ON ${o.inlineTable} AS PERMISSIVE FOR ALL TO PUBLIC
  USING (tenant_id OPERATOR(pg_catalog.=) ${TOKEN_TENANT_EXPR})
  WITH CHECK (tenant_id OPERATOR(pg_catalog.=) ${TOKEN_TENANT_EXPR});
RESET ROLE;
`;
}

/** Installs the design in `adminUrl`'s database (a superuser URL). */
export async function installTokenDesign(
  adminUrl: string,
  o: {
    owner: string;
    app: string;
    table: string;
    inlineTable: string;
    contextSecret: string;
    rls: boolean;
    sqlFunction?: boolean;
  },
): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // the inline form's table: a copy of the data, the same primary key, registered the same way
    await admin.query(`set role ${o.owner}`);
    await admin.query(`create table ${o.inlineTable} (like ${o.table})`);
    await admin.query(`insert into ${o.inlineTable} select * from ${o.table}`);
    await admin.query(`alter table ${o.inlineTable} add primary key (tenant_id, id)`);
    await admin.query(`select tenantry.register_tenant_table('${o.inlineTable}')`);
    await admin.query(`vacuum (analyze) ${o.inlineTable}`);
    await admin.query('reset role');
    await admin.query(tokenInstallSql({ ...o, tokenKey: tokenKeyOf(o.contextSecret) }));
    await admin.query('analyze tenantry_token.context_tokens');
  } finally {
    await admin.end();
  }
}

/** SQLSTATE of a failed promise, or 'ok' when it did not fail. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    return String((error as { code?: unknown }).code ?? (error as Error).message);
  }
}

/**
 * EXPLAIN of the token variant's point select (plan uses the index, the lookup an InitPlan run
 * once) and the security probe: what injected SQL in a tenant's session can and cannot do.
 * `adminUrl`: superuser URL of the token database (to write holds and expired rows).
 */
export async function probeToken(opts: {
  adminUrl: string;
  appUrl: string;
  contextSecret: string;
  tenants: [string, string, string];
  idOf: (tenant: string) => number;
  rowsPerTenant: number;
  /** Every tenant (their tokens are registered before the plans are shown). */
  allTenants: readonly string[];
  /** The copy of items whose policy writes the check out (b-token-inline). */
  inlineTable: string;
  /** RLS on the token table (the app role reads its own token's row only). */
  rls: boolean;
}): Promise<{ pointPlan: string; checks: Check[] }> {
  const [a, b, c] = opts.tenants;
  const key = tokenKeyOf(opts.contextSecret);
  const window = windowOf(Date.now());
  const tok = (t: string, epoch = 0) => tokenOf(key, t, window, epoch);
  const admin = new pg.Client({ connectionString: opts.adminUrl });
  const app = new pg.Client({ connectionString: opts.appUrl });
  await admin.connect();
  await app.connect();
  const checks: Check[] = [];
  const check = (name: string, pass: boolean, detail: string) => checks.push({ name, pass, detail });
  const setCtx = `select pg_catalog.set_config('${CONTEXT_SETTING}', $1, true)`;
  /** As the app role, in one transaction with `value` as the context: the rows of `sql` or the SQLSTATE. */
  const asApp = async (
    value: string,
    sql: string,
    values: unknown[] = [],
  ): Promise<{ rows?: unknown[]; code?: string }> => {
    await app.query('begin');
    try {
      await app.query(setCtx, [value]);
      const r = await app.query(sql, values);
      return { rows: r.rows };
    } catch (error) {
      return { code: String((error as { code?: unknown }).code) };
    } finally {
      await app.query('rollback');
    }
  };
  const tokenRows = async () =>
    Number((await admin.query('select count(*) as n from tenantry_token.context_tokens')).rows[0].n);
  try {
    // every tenant's token of this window, as the variants' prepare does, then statistics: the
    // plans below are those of a table with one row per tenant
    const issuer = new pg.Pool({ connectionString: opts.appUrl, max: 4 });
    try {
      for (let i = 0; i < opts.allTenants.length; i += 200)
        await Promise.all(
          opts.allTenants.slice(i, i + 200).map((t) => issuer.query(ISSUE_SQL, [t, window, 0, tok(t)])),
        );
    } finally {
      await issuer.end();
    }
    for (const t of [a, b, c]) await app.query(ISSUE_SQL, [t, window, 0, tok(t)]);
    await admin.query('analyze tenantry_token.context_tokens');
    const idA = opts.idOf(a);
    const idB = opts.idOf(b);
    const point = 'select id, payload from items where id = $1';

    const plans: string[] = [];
    for (const [variant, table] of [
      ['b-token', 'items'],
      ['b-token-inline', opts.inlineTable],
    ] as const) {
      await app.query('begin');
      await app.query(setCtx, [tok(a)]);
      const plan = (
        await app.query(`explain (analyze, verbose, buffers) select id, payload from ${table} where id = $1`, [idA])
      ).rows
        .map((r) => r['QUERY PLAN'] as string)
        .join('\n');
      const counted = Number((await app.query(`select count(*) as n from ${table}`)).rows[0].n);
      await app.query('rollback');
      plans.push(`${variant} (${table}):\n${plan}`);
      const lines = plan.split('\n');
      const indexLine = lines.find((l) => /Index (Only )?Scan using \S+ on (\S+\.)?items\w*\b/.test(l));
      const indexCond = lines.find((l) => /Index Cond: .*tenant_id = /.test(l)) ?? '';
      const at = lines.findIndex((l) => /^\s*InitPlan\b/.test(l));
      const initLoops = at < 0 ? undefined : /loops=(\d+)/.exec(lines.slice(at, at + 2).join(' '))?.[1];
      check(`${variant}: point select uses an index`, indexLine !== undefined, indexLine?.trim() ?? 'no index scan');
      check(
        `${variant}: index condition carries tenant_id (policy) and id (query)`,
        /tenant_id = \(InitPlan \d+\)/.test(indexCond) && /\bid = /.test(indexCond.replace(/tenant_id/g, '')),
        indexCond.trim() || 'no Index Cond',
      );
      check(
        `${variant}: the check is an InitPlan evaluated once (loops=1)`,
        initLoops === '1',
        `InitPlan loops=${initLoops}`,
      );
      const lookup = lines.find((l) => /Scan .*on tenantry_token\.context_tokens/.test(l));
      if (variant === 'b-token-inline')
        check(
          `${variant}: the lookup is one probe of the token table's primary key`,
          lookup !== undefined && /Index Scan using context_tokens_pkey/.test(lookup) && /loops=1\b/.test(lookup),
          lookup?.trim() ?? 'no scan of tenantry_token.context_tokens',
        );
      check(
        `${variant}: a whole-tenant count sees the tenant's ${opts.rowsPerTenant} rows`,
        counted === opts.rowsPerTenant,
        `count(*) = ${counted}`,
      );
    }
    const pointPlan = plans.join('\n\n');

    const own = await asApp(tok(a), point, [idA]);
    check("own token: the tenant's row", own.rows?.length === 1, JSON.stringify(own.code ?? own.rows?.length));
    const cross = await asApp(tok(a), point, [idB]);
    check(
      "own token, another tenant's id: no row",
      cross.rows?.length === 0,
      `rows ${cross.rows?.length ?? cross.code}`,
    );
    const forged = await asApp(tokenOf('not-the-key-'.repeat(4), b, window), point, [idB]);
    check('forged token (wrong key) → refused TR001, no row', forged.code === 'TR001', `got ${forged.code ?? 'rows'}`);
    const bHash = (await admin.query(`select encode(sha256(convert_to($1, 'UTF8')), 'hex') as h`, [tok(b)])).rows[0]
      .h as string;
    const hashAsToken = await asApp(bHash, point, [idB]);
    check(
      "another tenant's hash (as read from the table) set as the context → refused TR001",
      hashAsToken.code === 'TR001',
      `got ${hashAsToken.code ?? 'rows'}`,
    );
    const readAll = await asApp(tok(a), 'select tenant_id from tenantry_token.context_tokens');
    if (opts.rls)
      check(
        'the app role reads the token table: only its own token row',
        readAll.rows?.length === 1 && (readAll.rows[0] as { tenant_id: string }).tenant_id === a,
        `rows ${JSON.stringify(readAll.rows ?? readAll.code)}`,
      );
    else
      check(
        'RLS off on the token table: the app role reads every row (hashes, tenants, refusals)',
        (readAll.rows?.length ?? 0) >= 3,
        `rows ${readAll.rows?.length ?? readAll.code}`,
      );
    const before = await tokenRows();
    const insert = await codeOf(
      app.query(
        `insert into tenantry_token.context_tokens values (sha256('x'), $1, 0, now() + interval '1 day', null)`,
        [b],
      ),
    );
    check('app role cannot INSERT into the token table (42501)', insert === '42501', `got ${insert}`);
    const wrongMac = await codeOf(app.query(ISSUE_SQL, [b, window, 0, tokenOf('not-the-key-'.repeat(4), b, window)]));
    check('issue() with a wrong HMAC → TR001', wrongMac === 'TR001', `got ${wrongMac}`);
    const future = await codeOf(app.query(ISSUE_SQL, [b, window + 5, 0, tokenOf(key, b, window + 5)]));
    check('issue() for a window 5 ahead (even with the right HMAC) → TR001', future === 'TR001', `got ${future}`);
    const lockedOut = await codeOf(app.query('select * from tenantry_token.token_key'));
    check('app role cannot read the token key (42501)', lockedOut === '42501', `got ${lockedOut}`);
    const after = await tokenRows();
    check('nothing was registered by the refused attempts', after === before, `rows ${before} → ${after}`);

    // expiry: a token whose row expired is refused
    const expired = tokenOf(key, c, window - 3);
    await admin.query(
      `insert into tenantry_token.context_tokens values (sha256(convert_to($1, 'UTF8')), $2, 0, now() - interval '1 second', null)`,
      [expired, c],
    );
    const exp = await asApp(expired, point, [opts.idOf(c)]);
    check('expired token → refused TR001', exp.code === 'TR001', `got ${exp.code ?? 'rows'}`);

    // holds: suspended → TR005, deleted → TR006, lifted → serves again
    await admin.query(`insert into tenantry.inactive_tenants (tenant_key, status) values ($1, 'suspended')`, [c]);
    const held = await asApp(tok(c), point, [opts.idOf(c)]);
    check(
      'suspended tenant → TR005 (trigger updated its token row)',
      held.code === 'TR005',
      `got ${held.code ?? 'rows'}`,
    );
    await admin.query(`update tenantry.inactive_tenants set status = 'deleted' where tenant_key = $1`, [c]);
    const deleted = await asApp(tok(c), point, [opts.idOf(c)]);
    check('deleted tenant → TR006', deleted.code === 'TR006', `got ${deleted.code ?? 'rows'}`);
    await admin.query(`delete from tenantry.inactive_tenants where tenant_key = $1`, [c]);
    const lifted = await asApp(tok(c), point, [opts.idOf(c)]);
    check('hold lifted → serves again', lifted.rows?.length === 1, `got ${lifted.code ?? lifted.rows?.length}`);
    // route: frozen → TR004; moved on (epoch 1) → TR003 for the epoch-0 token; a token of epoch 1 serves
    await admin.query(`insert into tenantry.local_tenants (tenant_key, state, epoch) values ($1, 'frozen', 0)`, [c]);
    const frozen = await asApp(tok(c), point, [opts.idOf(c)]);
    check('frozen tenant (a move switching it) → TR004', frozen.code === 'TR004', `got ${frozen.code ?? 'rows'}`);
    await admin.query(`update tenantry.local_tenants set state = 'active', epoch = 1 where tenant_key = $1`, [c]);
    const stale = await asApp(tok(c), point, [opts.idOf(c)]);
    check(
      'stale route epoch (token of epoch 0, tenant now at 1) → TR003',
      stale.code === 'TR003',
      `got ${stale.code ?? 'rows'}`,
    );
    await app.query(ISSUE_SQL, [c, window, 1, tok(c, 1)]);
    const fresh = await asApp(tok(c, 1), point, [opts.idOf(c)]);
    check('token of the new route epoch → serves', fresh.rows?.length === 1, `got ${fresh.code ?? fresh.rows?.length}`);
    await admin.query(`delete from tenantry.local_tenants where tenant_key = $1`, [c]);
    await admin.query(
      `insert into tenantry_token.context_tokens values (sha256('expired-probe'), $1, 0, now() - interval '1 second', null)`,
      [b],
    );
    const purged = Number((await admin.query('select tenantry_token.purge_expired() as n')).rows[0].n);
    const left = Number(
      (await admin.query('select count(*) as n from tenantry_token.context_tokens where expires_at < now()')).rows[0].n,
    );
    check(
      "purge_expired() removes expired rows (issue() removes a tenant's own)",
      purged >= 1 && left === 0,
      `removed ${purged}, ${left} left`,
    );
    return { pointPlan, checks };
  } finally {
    await app.end();
    await admin.end();
  }
}

const MICRO_CALLS = 2_000;

/**
 * µs per call of each check as the app role, each call in its own transaction (as each statement
 * initialises the function afresh), minus the same loop without the call; the best of `rounds`
 * rounds interleaved across checks (the least disturbed on a shared machine), as the signed
 * study does. `checks`: name → [database URL of the app role, context value, expression].
 */
export async function tokenMicro(
  checks: ReadonlyArray<{ name: string; url: string; value: string; expr: string }>,
  rounds: number,
): Promise<Map<string, number>> {
  const clients = new Map<string, pg.Client>();
  try {
    for (const c of checks) {
      if (clients.has(c.url)) continue;
      const client = new pg.Client({ connectionString: c.url });
      await client.connect();
      clients.set(c.url, client);
    }
    const loop = async (client: pg.Client, value: string, expr: string) => {
      const literal = pg.Client.prototype.escapeLiteral(value);
      const t0 = process.hrtime.bigint();
      await client.query(
        `do $$ declare x uuid; begin for i in 1..${MICRO_CALLS} loop perform pg_catalog.set_config('${CONTEXT_SETTING}', ${literal}, true); x := ${expr}; commit; end loop; end $$`,
      );
      return Number(process.hrtime.bigint() - t0) / 1e3 / MICRO_CALLS;
    };
    const best = new Map<string, number>(checks.map((c) => [c.name, Infinity]));
    const base = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      for (const c of checks) {
        const client = clients.get(c.url)!;
        base.set(c.url, Math.min(base.get(c.url) ?? Infinity, await loop(client, c.value, 'null::uuid')));
        best.set(c.name, Math.min(best.get(c.name)!, await loop(client, c.value, c.expr)));
      }
    }
    return new Map(checks.map((c) => [c.name, best.get(c.name)! - base.get(c.url)!]));
  } finally {
    for (const client of clients.values()) await client.end();
  }
}
