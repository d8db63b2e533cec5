/**
 * The channel on which the catalog announces route changes (payload: the new route epoch,
 * nothing else). The `tiers` feature's migrations (src/tiers/migrations/) create the trigger
 * that NOTIFYs it: `tenantry.clusters`, `tenantry.placements` (where each tenant lives; a change
 * takes a new epoch from one sequence), and the data plane's route functions. The route check
 * itself (`tenantry.local_tenants`, `tenantry.local_route`) is core's: the context functions read
 * it on every statement (src/policy/migrations/).
 */
export const ROUTES_CHANNEL = 'tenantry_routes';
