-- Isolation tiers: a tenant's recordings and events follow it to its own schema or database
-- (app/data-migrations creates them there, and keeps them migrated everywhere, this database's
-- shared tables included); its identity stays here, in the home database.
--
-- Memberships are read by sign-in and by every request (the member lookup) in the home
-- database, whatever the tenant's tier: pinned, a move leaves them where they are, and their
-- policy takes the tenant from tenantry.home_tenant_id() (no route check: they never move).
SELECT tenantry.pin_tenant_table('public.members');
