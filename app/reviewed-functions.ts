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
    signature: 'app.accept_invitation(bytea, text, text, text, integer)',
    bodySha256: '496e82b1740a252304bb5929261ca63f58aa9f0d9a31d4d21b0a062d5a030e49',
    reason:
      "Accepting an invitation: spends a one-time code bound to the invited email and writes one membership (public.members) in the code's own tenant; every refusal raises AP001.",
  },
];
