-- global/: once per database, the home database included (where it replaces the functions of
-- app/migrations/004_events.sql). Events are written next to the tenant's data, and the trigger
-- stays silent while a move copies or deletes rows.

CREATE SCHEMA IF NOT EXISTS app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;

-- Events land in the event tables the CALLER's search path finds first: a RoutedTenantPool sets
-- a schema-tier tenant's search path (`t_acme, public`) transaction-locally, so its events go to
-- t_acme.tenant_events; everyone else's to public. Hence no pinned search_path: this function is
-- SECURITY INVOKER, it runs with the caller's own rights and RLS, so a caller who shadowed the
-- tables would only redirect its own events (the app role can create no table anyway). Built-in
-- functions are found first in pg_catalog regardless.
CREATE OR REPLACE FUNCTION public.emit_tenant_event(topic text, payload jsonb DEFAULT '{}'::jsonb, tenant uuid DEFAULT tenantry.current_tenant_id())
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $fn$
DECLARE
  v_seq bigint;
  v_route text;
BEGIN
  IF emit_tenant_event.tenant IS NULL THEN
    RAISE EXCEPTION 'tenantry: an event needs a tenant' USING ERRCODE = '42501';
  END IF;
  INSERT INTO tenant_event_streams AS s (tenant_id, last_seq) VALUES (emit_tenant_event.tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING s.last_seq, s.route INTO v_seq, v_route;
  INSERT INTO tenant_events (tenant_id, seq, topic, payload)
  VALUES (emit_tenant_event.tenant, v_seq, emit_tenant_event.topic, COALESCE(emit_tenant_event.payload, '{}'::jsonb));
  PERFORM pg_notify('tenantry_live', v_route);
  RETURN v_seq;
END
$fn$;
REVOKE ALL ON FUNCTION public.emit_tenant_event(text, jsonb, uuid) FROM PUBLIC;

-- The writer's search path too; silent for the rows a tenant move copies or deletes
-- (tenantry.is_moving(): the mover's owner sessions only): their events travel as rows.
CREATE OR REPLACE FUNCTION app.recording_event() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER
AS $fn$
BEGIN
  IF tenantry.is_moving() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    PERFORM public.emit_tenant_event('recording.deleted', pg_catalog.jsonb_build_object('id', OLD.id, 'ownerId', OLD.owner_id), OLD.tenant_id);
    RETURN OLD;
  END IF;
  PERFORM public.emit_tenant_event(CASE TG_OP WHEN 'INSERT' THEN 'recording.created' ELSE 'recording.updated' END,
                                   pg_catalog.jsonb_build_object('id', NEW.id, 'ownerId', NEW.owner_id), NEW.tenant_id);
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION app.recording_event() FROM PUBLIC;

-- the app role as `tenantry install` recorded it (these files take no variables)
DO $grant$ BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA app TO %I', (SELECT value FROM tenantry.meta WHERE key = 'app_role'));
  EXECUTE format('GRANT EXECUTE ON FUNCTION public.emit_tenant_event(text, jsonb, uuid) TO %I', (SELECT value FROM tenantry.meta WHERE key = 'app_role'));
END $grant$;
