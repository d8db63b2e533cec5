import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { StaffAccess, type Queryable } from 'tenantry';
import type { FlagsAdmin, SettingsAdmin, SettingsSchema } from 'tenantry/settings';
import { ApiError } from '../http/api-error.js';
import { int, parseInput, queryInt, text } from '../http/validation.js';
import { consoleTenant, recordConsoleReason } from './console-tenant.js';

/** What the console needs for settings and flags: the server's admins (tenantry/settings). */
export interface ConsoleSettings {
  // the schema's type is the application's: the console only passes values through it
  admin: Pick<SettingsAdmin<SettingsSchema>, 'resolve' | 'set' | 'unset' | 'rollback' | 'history' | 'definition'>;
  flags: Pick<FlagsAdmin, 'override' | 'clear' | 'changes' | 'definition'>;
}

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const changeBody = z
  .object({
    key: text().regex(NAME, 'key must be a setting name'),
    // any JSON: the application's schema judges it (SETTING_INVALID naming the key)
    value: z.unknown().optional(),
    unset: z.literal(true).optional(),
    reason: text(),
  })
  .strict()
  .refine((b) => (b.unset === true) !== (b.value !== undefined), {
    message: 'give a value, or unset: true',
    path: ['value'],
  });
const rollbackBody = z.object({ version: int(0, 2_147_483_647), reason: text() }).strict();
const flagParams = z.object({ tenant: z.string(), flag: z.string().regex(NAME, 'flag must be a flag name') }).strict();
const flagBody = z.object({ state: z.enum(['on', 'off', 'clear']), reason: text() }).strict();
const historyQuery = z
  .object({
    before: queryInt(1, 2_147_483_647).optional(),
    limit: queryInt(1, 200).default(50),
  })
  .strict();

interface FlagRow {
  flag: string;
  killed: boolean | null;
  rollout_percent: string | null;
  override: unknown;
}

/**
 * Settings and flags of a tenant in the console, through the library's admins: the resolved
 * values and the layer of each (library, app, plan, tenant), edits validated by the application's
 * schema (a refused value is 400 SETTING_INVALID naming the key, and nothing changes), the
 * history (who, when, why, old and new), rollback to a change, and per-tenant flag overrides
 * (on, off, clear). Every change is made with the actor `staff:<id>` and a reason, and the reason
 * goes to the tenant's audit log under the staff member's name (a one-minute grant).
 */
export function consoleSettingsRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; settings: ConsoleSettings; staffAccess: StaffAccess },
): void {
  const { catalogPool, settings, staffAccess } = options;
  const { admin, flags } = settings;

  const flagStates = async (tenantId: string) => {
    const names = flags.definition.names;
    const { rows } = await catalogPool.query<FlagRow>(
      `select n.flag, g.killed, g.rollout_percent::text,
              (select f.value from tenantry_private.tenant_flags f where f.tenant_id = $1 and f.flag = n.flag) as override
         from unnest($2::text[]) as n(flag) left join tenantry_private.feature_flags g on g.flag = n.flag`,
      [tenantId, names],
    );
    const { rows: t } = await catalogPool.query<{ plan: string | null }>(
      `select settings->>'plan' as plan from tenantry.tenants where id = $1`,
      [tenantId],
    );
    const overrides = Object.fromEntries(rows.filter((r) => r.override !== null).map((r) => [r.flag, r.override]));
    return rows.map((r) => {
      const declaration = flags.definition.declaration(r.flag);
      const evaluation = flags.definition.evaluate(
        r.flag,
        { tenantId, plan: t[0]?.plan ?? null, overrides },
        r.killed === null
          ? undefined
          : { killed: r.killed, rolloutPercent: r.rollout_percent === null ? null : Number(r.rollout_percent) },
      );
      return {
        flag: r.flag,
        description: declaration.description ?? null,
        value: evaluation.value,
        reason: evaluation.reason,
        variant: evaluation.variant,
        override: r.override ?? null,
        killed: r.killed ?? false,
      };
    });
  };

  const actor = (userId: string) => `staff:${userId}`;

  api.get('/console/api/tenants/:tenant/settings', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const snap = await admin.resolve(tenant.id);
    const changes = await flags.changes({ tenantId: tenant.id, limit: 20 });
    return {
      values: snap.values,
      sources: snap.sources,
      plan: snap.plan,
      version: snap.version,
      ignored: snap.ignored,
      keys: admin.definition.keys,
      flags: await flagStates(tenant.id),
      flagChanges: changes,
    };
  });

  api.get('/console/api/tenants/:tenant/settings/history', { config: { query: historyQuery } }, async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const q = parseInput(historyQuery, request.query, 'query');
    const items = await admin.history(tenant.id, { limit: q.limit, ...(q.before ? { before: q.before } : {}) });
    return { items, next: items.length === q.limit ? items.at(-1)!.version : null };
  });

  api.post('/console/api/tenants/:tenant/settings', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const body = parseInput(changeBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (tenant.status === 'deleted') throw new ApiError(409, 'TENANT_DELETED', 'A deleted tenant is not changed');
    const staff = request.consoleStaff!;
    const meta = { actor: actor(staff.userId), reason, auditActor: { kind: 'staff' as const, id: staff.userId } };
    // validated (SETTING_UNKNOWN, SETTING_INVALID) before anything is written or audited
    if (body.unset !== true) admin.definition.check(body.key, body.value);
    const change =
      body.unset === true
        ? await admin.unset(tenant.id, body.key, meta)
        : await admin.set(tenant.id, body.key, body.value, meta);
    if (change.version !== null)
      await recordConsoleReason(
        staffAccess,
        { sessionId: staff.sessionId, tenantId: tenant.id },
        `settings ${body.unset === true ? 'unset' : 'set'} ${body.key} (change ${change.version})`,
        reason,
      );
    return change;
  });

  api.post('/console/api/tenants/:tenant/settings/rollback', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const body = parseInput(rollbackBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (tenant.status === 'deleted') throw new ApiError(409, 'TENANT_DELETED', 'A deleted tenant is not changed');
    const staff = request.consoleStaff!;
    const change = await admin.rollback(tenant.id, body.version, {
      actor: actor(staff.userId),
      reason,
      auditActor: { kind: 'staff', id: staff.userId },
    });
    if (change.version !== null)
      await recordConsoleReason(
        staffAccess,
        { sessionId: staff.sessionId, tenantId: tenant.id },
        `settings rollback to change ${body.version} (change ${change.version})`,
        reason,
      );
    return change;
  });

  api.post('/console/api/tenants/:tenant/flags/:flag', async (request) => {
    const { flag } = parseInput(flagParams, request.params, 'params');
    const tenant = await consoleTenant(catalogPool, request);
    const body = parseInput(flagBody, request.body, 'body');
    const reason = StaffAccess.checkReason(body.reason);
    if (tenant.status === 'deleted') throw new ApiError(409, 'TENANT_DELETED', 'A deleted tenant is not changed');
    const declaration = flags.definition.declaration(flag); // FLAG_UNKNOWN
    const staff = request.consoleStaff!;
    const meta = { actor: actor(staff.userId), reason, auditActor: { kind: 'staff' as const, id: staff.userId } };
    if (body.state === 'clear') await flags.clear(tenant.id, flag, meta);
    else {
      if (typeof declaration.off !== 'boolean')
        throw new ApiError(400, 'FLAG_NOT_BOOLEAN', 'Only on/off flags are overridden from the console', 'flag');
      await flags.override(tenant.id, flag, body.state === 'on', meta);
    }
    await recordConsoleReason(
      staffAccess,
      { sessionId: staff.sessionId, tenantId: tenant.id },
      `flag ${flag} ${body.state}`,
      reason,
    );
    return { flag, state: body.state };
  });
}
