-- Isolation tiers: a tenant's recordings and events follow it to its own schema or database
-- (app/data-migrations creates them there); its identity stays here, in the home database.
--
-- Memberships are read by sign-in and by every request (the member lookup) in the home
-- database, whatever the tenant's tier: pinned, a move leaves them where they are.
SELECT tenantry.pin_tenant_table('public.members');

-- Events are written next to the tenant's data: into the event tables the CALLER's search path
-- finds first. A RoutedTenantPool sets a schema-tier tenant's search path (`t_acme, public`)
-- transaction-locally, so its events land in t_acme.tenant_events; everyone else's in public.
-- Hence no pinned search_path here: this function is SECURITY INVOKER, it runs with the
-- caller's own rights and RLS, so a caller who shadows the tables (a temporary table) only
-- redirects its own events. Built-in functions are found first in pg_catalog regardless.
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
  -- the row lock serializes this tenant's writers until commit: seq follows commit order
  INSERT INTO tenant_event_streams AS s (tenant_id, last_seq) VALUES (emit_tenant_event.tenant, 1)
  ON CONFLICT (tenant_id) DO UPDATE SET last_seq = s.last_seq + 1
  RETURNING s.last_seq, s.route INTO v_seq, v_route;
  INSERT INTO tenant_events (tenant_id, seq, topic, payload)
  VALUES (emit_tenant_event.tenant, v_seq, emit_tenant_event.topic, COALESCE(emit_tenant_event.payload, '{}'::jsonb));
  -- sent at commit, once per transaction and route (PostgreSQL folds duplicates)
  PERFORM pg_notify('tenantry_live', v_route);
  RETURN v_seq;
END
$fn$;

-- The trigger keeps the writer's search path too (see above), and stays silent while a tenant
-- move copies or deletes rows (`tenantry.moving`, set by the mover): those rows' events travel
-- with them as rows of tenant_events, they are not new changes.
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
