import type { FastifyInstance } from 'fastify';
import { runAs, sqlStateOf, type Queryable } from 'tenantry';
import { consoleTenant } from './console-tenant.js';

/** How many members the tenant page lists (the newest first after owners and admins). */
const MEMBERS_SHOWN = 200;

/**
 * A tenant's members and its status history on the tenant page. Members are read as the tenant
 * (the app role in its context: RLS shows this tenant's rows only) in the home database, where
 * they are pinned whatever the tenant's tier (`home_tenant_id()`: no route check); the history is the catalog's
 * times, the console's own audit of lifecycle actions (with staff and reason) and the moves.
 */
export function consolePeopleRoutes(api: FastifyInstance, options: { catalogPool: Queryable; appPool: Queryable }) {
  const { catalogPool, appPool } = options;

  api.get('/console/api/tenants/:tenant/members', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    try {
      const { rows } = await runAs(tenant.id, () =>
        appPool.query<{ user_id: string; display_name: string; email: string; role: string; created_at: Date }>(
          `select user_id, display_name, email, role, created_at from public.members
            where tenant_id = (select tenantry.home_tenant_id())
            order by case role when 'owner' then 0 when 'admin' then 1 else 2 end, created_at desc
            limit ${MEMBERS_SHOWN + 1}`,
        ),
      );
      return {
        members: rows.slice(0, MEMBERS_SHOWN).map((m) => ({
          userId: m.user_id,
          name: m.display_name,
          email: m.email,
          role: m.role,
          since: m.created_at,
        })),
        more: rows.length > MEMBERS_SHOWN,
      };
    } catch (error) {
      // an inactive tenant's data is closed at the database, to staff as to everyone
      const state = sqlStateOf(error) ?? (error as { code?: unknown }).code;
      if (state === 'TR005' || state === 'TR006' || state === 'TENANT_SUSPENDED' || state === 'TENANT_DELETED')
        return { members: null, more: false, closed: tenant.status };
      throw error;
    }
  });

  api.get('/console/api/tenants/:tenant/history', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const { rows } = await catalogPool.query<{
      at: Date;
      kind: string;
      what: string;
      by: string | null;
      why: string | null;
    }>(
      `select * from (
         select created_at as at, 'status' as kind, 'created' as what, null::text as by, null::text as why
           from tenantry.tenants where id = $1
         union all
         select suspended_at, 'status', 'suspended (now)', null, null from tenantry.tenants where id = $1 and suspended_at is not null
         union all
         select deleted_at, 'status', 'soft-deleted (now)', null, null from tenantry.tenants where id = $1 and deleted_at is not null
         union all
         select occurred_at, 'console', action || case when outcome = 'ok' then '' else ' (' || outcome || ')' end, staff_id::text, reason
           from app_private.console_audit
          where target_tenant_id = $1 and (action like 'tenant.%' or action like 'move.%' or action = 'purge')
         union all
         select created_at, 'move', step || ': ' || coalesce(source->>'tier', '?') || ' → ' || coalesce(target->>'tier', '?'), null, error
           from tenantry.moves where tenant_id = $1
       ) h order by at desc limit 100`,
      [tenant.id],
    );
    return { history: rows.map((r) => ({ at: r.at, kind: r.kind, what: r.what, staffId: r.by, detail: r.why })) };
  });
}
