import { quoteIdent, quoteLiteral, validIdentifier } from '../policy/identifiers.js';
import { DEFAULT_LIVE_CHANNEL } from './tenant-event.js';

/** Options of {@link liveSchemaSql}. */
export interface LiveSchemaOptions {
  /** The application role (gets EXECUTE on the event function). */
  appRole: string;
  /** Schema of the two tables and the function; default `public`. */
  schema?: string;
  /** The deployment's one NOTIFY channel; default `tenantry_live`. */
  channel?: string;
}

/**
 * The event log's DDL, for a migration run as the owner role after `tenantry install`:
 *
 * - `tenant_event_streams (tenant_id, route, last_seq)`: one row per tenant. `route` is 128
 *   random bits, the only thing a NOTIFY carries; it can be read only under the tenant's own
 *   (signed) context. Writers lock the row from their first event to their commit, so `seq` is
 *   gap-free and in commit order per tenant.
 * - `tenant_events (tenant_id, seq, topic, payload, created_at)`: the events.
 * - `emit_tenant_event(topic, payload, tenant default current)`: SECURITY INVOKER, so RLS checks
 *   the tenant; appends the event and NOTIFYs the route, both in the caller's transaction.
 *
 * Both tables are registered with `tenantry.register_tenant_table` (RLS forced).
 *
 * @example
 * await owner.query(liveSchemaSql({ appRole: 'tenantry_app' }));
 */
export function liveSchemaSql(options: LiveSchemaOptions): string {
  const schema = quoteIdent(options.schema ?? 'public', 'schema');
  const app = quoteIdent(options.appRole, 'role');
  const channel = quoteLiteral(validIdentifier(options.channel ?? DEFAULT_LIVE_CHANNEL, 'channel'));
  return `
CREATE TABLE ${schema}.tenant_event_streams (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id() PRIMARY KEY,
  -- the doorbell carried by NOTIFY: random, unlinkable to the tenant without its context
  route text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (route ~ '^[0-9a-f]{32}$'),
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
SELECT tenantry.register_tenant_table('${schema}.tenant_event_streams');

CREATE TABLE ${schema}.tenant_events (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  seq bigint NOT NULL CHECK (seq > 0),
  topic text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object' AND pg_column_size(payload) <= 8192),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);
SELECT tenantry.register_tenant_table('${schema}.tenant_events');

CREATE FUNCTION ${schema}.emit_tenant_event(topic text, payload jsonb DEFAULT '{}'::jsonb, tenant uuid DEFAULT tenantry.current_tenant_id())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
  v_seq bigint;
  v_route text;
BEGIN
  IF emit_tenant_event.tenant IS NULL THEN
    RAISE EXCEPTION 'tenantry: an event needs a tenant' USING ERRCODE = '42501';
  END IF;
  -- the row lock serializes this tenant's writers until commit: seq follows commit order
  INSERT INTO ${schema}.tenant_event_streams AS s (tenant_id, last_seq) VALUES (emit_tenant_event.tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING s.last_seq, s.route INTO v_seq, v_route;
  INSERT INTO ${schema}.tenant_events (tenant_id, seq, topic, payload)
  VALUES (emit_tenant_event.tenant, v_seq, emit_tenant_event.topic, COALESCE(emit_tenant_event.payload, '{}'::jsonb));
  -- sent at commit, once per transaction and route (PostgreSQL folds duplicates)
  PERFORM pg_notify(${channel}, v_route);
  RETURN v_seq;
END
$fn$;
REVOKE ALL ON FUNCTION ${schema}.emit_tenant_event(text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ${schema}.emit_tenant_event(text, jsonb, uuid) TO ${app};
`;
}
