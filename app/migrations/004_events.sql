-- Live channels: every change of a recording appends an event to its tenant's stream, in the
-- same statement, and rings the stream's route (NOTIFY, sent at commit).
--
-- What leaves the database on the one channel `tenantry_live` is only a stream's `route`: 128
-- random bits per tenant, readable only under that tenant's own signed context. Any role that
-- can connect may LISTEN on any channel, so neither the channel nor the payload carries a tenant
-- id or event data. Servers re-read the events as the subscriber's tenant (RLS decides).
-- The tables and the function are those of `liveSchemaSql()` (src/live/live-schema-sql.ts).

CREATE TABLE public.tenant_event_streams (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id() PRIMARY KEY,
  -- the doorbell carried by NOTIFY: random, unlinkable to the tenant without its context
  route text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '') CHECK (route ~ '^[0-9a-f]{32}$'),
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
);
SELECT tenantry.register_tenant_table('public.tenant_event_streams');

CREATE TABLE public.tenant_events (
  tenant_id uuid NOT NULL DEFAULT tenantry.current_tenant_id(),
  seq bigint NOT NULL CHECK (seq > 0),
  topic text NOT NULL CHECK (topic ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  payload jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(payload) = 'object' AND pg_column_size(payload) <= 8192),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, seq)
);
SELECT tenantry.register_tenant_table('public.tenant_events');

-- SECURITY INVOKER: as the app role, RLS refuses an event for any tenant but the one in context.
CREATE FUNCTION public.emit_tenant_event(topic text, payload jsonb DEFAULT '{}'::jsonb, tenant uuid DEFAULT tenantry.current_tenant_id())
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
  INSERT INTO public.tenant_event_streams AS s (tenant_id, last_seq) VALUES (emit_tenant_event.tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING s.last_seq, s.route INTO v_seq, v_route;
  INSERT INTO public.tenant_events (tenant_id, seq, topic, payload)
  VALUES (emit_tenant_event.tenant, v_seq, emit_tenant_event.topic, COALESCE(emit_tenant_event.payload, '{}'::jsonb));
  -- sent at commit, once per transaction and route (PostgreSQL folds duplicates)
  PERFORM pg_notify('tenantry_live', v_route);
  RETURN v_seq;
END
$fn$;
REVOKE ALL ON FUNCTION public.emit_tenant_event(text, jsonb, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.emit_tenant_event(text, jsonb, uuid) TO :"app_role";

-- Recordings: ids only in the payload (a title may be sensitive; subscribers fetch what they may see).
CREATE FUNCTION app.recording_event() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM public.emit_tenant_event('recording.deleted', jsonb_build_object('id', OLD.id, 'ownerId', OLD.owner_id), OLD.tenant_id);
    RETURN OLD;
  END IF;
  PERFORM public.emit_tenant_event(CASE TG_OP WHEN 'INSERT' THEN 'recording.created' ELSE 'recording.updated' END,
                                   jsonb_build_object('id', NEW.id, 'ownerId', NEW.owner_id), NEW.tenant_id);
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION app.recording_event() FROM PUBLIC;

CREATE TRIGGER recordings_emit_events
AFTER INSERT OR UPDATE OR DELETE ON public.recordings
FOR EACH ROW EXECUTE FUNCTION app.recording_event();
