import type pg from 'pg';

/**
 * Every Tenantry catalog object of a database, as comparable text: functions (with a hash of
 * their source, their security and settings, and ACL), relations (kind, RLS flags, ACL), columns,
 * constraints, indexes, policies, triggers, event triggers, schema ACLs, default privileges and
 * the app role's settings. Role names are replaced by APP / OWNER / SUPPORT so two databases
 * installed with different roles compare.
 */
export async function catalogListing(
  admin: Pick<pg.Pool, 'query'>,
  roles: { app: string; owner: string; support?: string; router?: string },
): Promise<string[]> {
  const queries = [
    `SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
            || md5(p.prosrc) || ' secdef=' || p.prosecdef || ' lang=' || l.lanname || ' vol=' || p.provolatile::text
            || ' config=' || coalesce(p.proconfig::text, '-') || ' owner=' || pg_get_userbyid(p.proowner)
            || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '-')
       FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
      WHERE n.nspname IN ('tenantry', 'tenantry_private')`,
    `SELECT 'relation ' || n.nspname || '.' || c.relname || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
            || ' force=' || c.relforcerowsecurity || ' owner=' || pg_get_userbyid(c.relowner)
            || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '-')
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('tenantry', 'tenantry_private') AND c.relkind IN ('r', 'p', 'v', 'S', 'i')`,
    `SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
            || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '-')
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
      WHERE n.nspname IN ('tenantry', 'tenantry_private') AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v')`,
    `SELECT 'constraint ' || n.nspname || '.' || c.relname || ' ' || pg_get_constraintdef(k.oid)
       FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('tenantry', 'tenantry_private')`,
    `SELECT 'index ' || pg_get_indexdef(i.indexrelid)
       FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname IN ('tenantry', 'tenantry_private')`,
    `SELECT 'policy ' || p.schemaname || '.' || p.tablename || ' ' || p.policyname || ' ' || p.permissive || ' ' || p.cmd
            || ' roles=' || p.roles::text || ' using=' || coalesce(p.qual, '-') || ' check=' || coalesce(p.with_check, '-')
       FROM pg_policies p WHERE p.schemaname IN ('tenantry', 'tenantry_private')`,
    `SELECT 'trigger ' || t.tgrelid::regclass::text || ' ' || pg_get_triggerdef(t.oid)
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE NOT t.tgisinternal AND n.nspname IN ('tenantry', 'tenantry_private')`,
    `SELECT 'event trigger ' || evtname || ' ' || evtevent || ' ' || evtfoid::regproc::text || ' ' || evtenabled::text || ' ' || coalesce(evttags::text, '-')
       FROM pg_event_trigger`,
    `SELECT 'schema ' || nspname || ' owner=' || pg_get_userbyid(nspowner)
            || ' acl=' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(nspacl) a), '-')
       FROM pg_namespace WHERE nspname IN ('tenantry', 'tenantry_private', 'public')`,
    `SELECT 'default acl ' || pg_get_userbyid(defaclrole) || ' ' || defaclobjtype::text || ' ' || coalesce(defaclacl::text, '-')
       FROM pg_default_acl`,
    `SELECT 'database acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(datacl) a), '-')
       FROM pg_database WHERE datname = current_database()`,
    `SELECT 'meta ' || key || '=' || value FROM tenantry.meta`,
    `SELECT 'library migration ' || feature || '/' || version || ' ' || name || ' ' || checksum FROM tenantry.library_migrations`,
  ];
  const out: string[] = [];
  for (const q of queries)
    for (const row of (await admin.query<{ [k: string]: string }>(q)).rows) out.push(Object.values(row)[0]!);
  const names: [string, string][] = [
    [roles.app, 'APP'],
    [roles.owner, 'OWNER'],
    ...(roles.support ? ([[roles.support, 'SUPPORT']] as [string, string][]) : []),
    ...(roles.router ? ([[roles.router, 'ROUTER']] as [string, string][]) : []),
  ];
  return out.map((line) => names.reduce((l, [name, label]) => l.split(name).join(label), line)).sort();
}
