-- tiers 002: routes are the router role's, not the app role's
-- tiers/001 let the app role EXECUTE tenantry.route_of() and tenantry.routes_since(): any SQL
-- running as the app role (injected under one tenant) could list every placed tenant's tier,
-- cluster, database and schema. The data plane's TenantRouter now connects as the router role
-- (install's roles step creates it; the grants step gives it EXECUTE on both functions), and
-- the app role keeps nothing of the routing data. The route check itself (core's
-- tenantry.check_route, reading tenantry.local_tenants through a definer function) answers only
-- "is this statement's route current", never where anyone lives. Runs as the owner role.
REVOKE ALL ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION tenantry.route_of(uuid), tenantry.routes_since(bigint) FROM :TENANTRY_APP_ROLE;
