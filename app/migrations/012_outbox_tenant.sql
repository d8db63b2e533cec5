-- The outbox names the tenant its mail is about, so that the purge removes a purged tenant's
-- e-mails (addresses, invitation and confirmation codes) with the rest of its data.
--
-- Before: app_private.outbox (007) had no tenant column: the purge's scan for tables with a
-- `tenant_id` column could not see it, and a purged tenant's mail stayed. Now every row carries
-- `tenant_id` (nullable: mail about no tenant stays possible), the purge's outbox participant
-- (app/identity/outbox-purge.ts) deletes the tenant's rows, and a purge without it is refused
-- (PURGE_UNACCOUNTED_TABLES) instead of leaving them.
ALTER TABLE app_private.outbox ADD COLUMN tenant_id uuid;

-- Every writer of the outbox (app.send_invitation, app.accept_invitation) writes mail about an
-- invitation: the tenant is the invitation code's. A trigger fills it in rather than a rewrite of
-- those two functions (their bodies stay as reviewed in 007 and 010); the tenant's slug in the
-- message is the fallback for a code no longer there.
CREATE FUNCTION app_private.outbox_tenant() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
  IF NEW.tenant_id IS NULL AND NEW.invitation IS NOT NULL THEN
    SELECT c.tenant_id INTO NEW.tenant_id FROM tenantry_private.one_time_codes AS c
     WHERE c.code_hash = NEW.invitation LIMIT 1;
  END IF;
  IF NEW.tenant_id IS NULL AND NEW.data ? 'tenant' THEN
    SELECT t.id INTO NEW.tenant_id FROM tenantry.tenants AS t WHERE t.slug = NEW.data->>'tenant';
  END IF;
  RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION app_private.outbox_tenant() FROM PUBLIC;
CREATE TRIGGER outbox_tenant BEFORE INSERT ON app_private.outbox
  FOR EACH ROW EXECUTE FUNCTION app_private.outbox_tenant();

-- the mail written before this migration
UPDATE app_private.outbox AS o SET tenant_id = c.tenant_id
  FROM tenantry_private.one_time_codes AS c
 WHERE o.tenant_id IS NULL AND c.code_hash = o.invitation;
UPDATE app_private.outbox AS o SET tenant_id = t.id
  FROM tenantry.tenants AS t
 WHERE o.tenant_id IS NULL AND t.slug = o.data->>'tenant';

CREATE INDEX outbox_tenant_idx ON app_private.outbox (tenant_id) WHERE tenant_id IS NOT NULL;
