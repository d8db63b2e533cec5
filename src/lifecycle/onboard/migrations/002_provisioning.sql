-- onboard 002: a tenant being onboarded is not an active tenant until its onboarding is done.
--
-- Onboarding creates the tenant with status 'provisioning' and activates it in the transaction
-- that closes its record (the `done` step). Until then the catalog says 'provisioning' (the
-- resolver answers it as not found, job workers do not run its jobs, `tenants resume` cannot
-- wake it) and the data plane holds it like a suspended tenant: core 005's trigger writes its
-- hold (tenantry.inactive_tenants) in the same transaction as the catalog row, and
-- tenantry.refuse_inactive() refuses any status other than 'deleted' with TR005. A sign-up that
-- crashed half-way therefore stays invisible until a re-run finishes it (or an operator deletes
-- and purges it). Widening the two status checks is all the SQL this needs: the trigger, the
-- context functions and tenantry.reconcile of holds already treat every non-active status alike.
-- Idempotent (drop and add again).
ALTER TABLE tenantry.tenants DROP CONSTRAINT IF EXISTS tenants_status_check;
ALTER TABLE tenantry.tenants ADD CONSTRAINT tenants_status_check
  CHECK (status IN ('active', 'suspended', 'deleted', 'provisioning'));
ALTER TABLE tenantry.inactive_tenants DROP CONSTRAINT IF EXISTS inactive_tenants_status_check;
ALTER TABLE tenantry.inactive_tenants ADD CONSTRAINT inactive_tenants_status_check
  CHECK (status IN ('suspended', 'deleted', 'provisioning'));
