-- core 006: RoutedTenantPool's prefix, tenantry.enter_route, runs as the caller and cannot pin its
-- search_path with a SET clause (that would undo, at its exit, the schema tier's search path it
-- sets for the statement), so PL/pgSQL parsed its `<>` through the caller's search_path: a `<>`
-- for text planted ahead of pg_catalog ran in its place (test/isolation/context-hijack.test.ts).
-- Every name in it is now schema-qualified, operators included. It never was a way past the check
-- (tenantry.check_route is SECURITY DEFINER with a pinned path, and signed mode's policy check
-- verifies the route again), but nothing a session's search_path holds should run in the prefix.
CREATE OR REPLACE FUNCTION tenantry.enter_route(p_context text, p_search_path text) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $fn$
BEGIN
  PERFORM pg_catalog.set_config('tenantry.context', p_context, true);
  IF p_search_path IS NOT NULL AND p_search_path OPERATOR(pg_catalog.<>) ''::pg_catalog.text THEN
    PERFORM pg_catalog.set_config('search_path', p_search_path, true);
  END IF;
  PERFORM tenantry.check_route(p_context);
END
$fn$;
