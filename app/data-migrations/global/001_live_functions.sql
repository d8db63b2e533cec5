-- The reference server's tenant data, wherever a tenant lives: the shared tables of a cluster's
-- shared database, a schema-tier tenant's schema, a database-tier tenant's database. Applied by
-- `tenantry migrate` (migrateEverywhere) and, for a location being prepared for a move, by
-- migrateLocation. The home database got the same objects from app/migrations (002, 004, 006):
-- its shared tables are recorded as at version 2 (a baseline) by app/tiers/tenant-tiers.ts.
--
-- global/: once per database. The event function and the recordings trigger of 006_tiers.sql.

CREATE SCHEMA IF NOT EXISTS app;
REVOKE ALL ON SCHEMA app FROM PUBLIC;

-- SECURITY INVOKER, no pinned search path: events land in the event tables of the caller's
-- search path (its own schema first for a schema-tier tenant). See app/migrations/006_tiers.sql.
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
