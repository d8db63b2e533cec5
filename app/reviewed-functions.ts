import type { ReviewedFunction } from 'tenantry';

/**
 * The reference server's SECURITY DEFINER functions that the app role may run, each reviewed for
 * what it reaches across tenants (`tenantry doctor` reports every such function until it is listed
 * in `tenantry.reviewed_functions`: DEFINER_NOT_REVIEWED). Recorded by {@link migrate} after the
 * migrations, with the hash of the body that was reviewed: a migration that changes a body makes
 * doctor report it again (DEFINER_CHANGED_SINCE_REVIEW, with the new hash) until the change is
 * reviewed and its hash copied here.
 */
export const REVIEWED_FUNCTIONS: ReviewedFunction[] = [
  {
    signature: 'app.staff_profile(uuid)',
    bodySha256: '3157c4134d16a6b288bd9f764c1b6c7eba9ceba850060b0f3d516821a20f14c5',
    reason:
      "GET /me for staff acting as a tenant: an active staff member's own email and display name (app_private.users); no tenant table.",
  },
  {
    signature: 'app.sign_in(text, text, text, integer)',
    bodySha256: 'fb78adfb974614c7bbc2991dbf937739a1469dbd8936a4bc777b70306c3fd579',
    reason:
      "Password sign-in: reads the caller's memberships (public.members) across tenants only to find the one in the tenant asked for; returns that one user and tenant, the same empty answer for every refusal.",
  },
  {
    signature: 'app.staff_sign_in(text, text, integer)',
    bodySha256: 'bfd8c0e1908ed75e0c6460722d6c632d9a28a542525aea2cb78789e2f0a36fbf',
    reason: 'Staff sign-in: checks the password and starts a staff session for active staff only; no tenant table.',
  },
  {
    signature: 'app.send_invitation(text)',
    bodySha256: '087eacc59fc7273547be89630890be21908b7f85d34b5edd86dfd969524a7ae1',
    reason:
      "Delivers an invitation the caller's own tenant issued (checked against tenantry.home_tenant_id()) to the outbox, once, also while the tenant is being onboarded (migration 010); another tenant's or a spent code writes nothing. No tenant table.",
  },
  {
    signature: 'app.accept_invitation(bytea, text, text, text, bytea, integer)',
    bodySha256: 'fb4ee91e499c96da30833ab28b92c5f3a241eadc239bb2c54f21057cf17ccd6b',
    reason:
      "Accepting an invitation: the caller proves the identity (its password, or the confirmation sent to the invited address) before the code is spent; then writes one membership (public.members) in the code's own tenant. The same answer whether or not the address has an account.",
  },
];
