import type { FastifyInstance } from 'fastify';
import type { Client } from '@openfeature/server-sdk';
import { z } from 'zod';
import { currentTenant } from 'tenantry';
import type { FlagsAdmin, SettingsAdmin, TenantSettings } from 'tenantry/settings';
import { auditActor, changeMetaOf } from '../auth/audit-actor.js';
import { adminOf, memberOf } from '../auth/tenant-scope.js';
import { tenantFlagRoutes } from './flag-routes.js';
import { parseInput, text } from '../http/validation.js';
import { settings } from './definition.js';
import { ApiError } from '../http/api-error.js';
import { PLANS } from '../plans.js';

// settings whose value a plan sets (app/plans.ts): limits the plan sells
const PLAN_CAPPED = new Set(Object.values(PLANS).flatMap((spec) => Object.keys(spec.settings ?? {})));

/** What the settings routes need. */
export interface SettingsRoutesOptions {
  reader: TenantSettings<typeof settings.schema>;
  admin: SettingsAdmin<typeof settings.schema>;
  /** An OpenFeature client over `TenantFlagProvider`. */
  features: Client;
  /** Flag overrides and kill switches (`/flags`, `/staff/flags`); those routes are absent without it. */
  flagsAdmin?: FlagsAdmin;
}

const keyParams = z.object({ key: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,127}$/, 'key must be a setting name') });
const setBody = z.object({ value: z.unknown(), reason: text().max(500).optional() }).strict();
const rollbackBody = z.object({ version: z.number().int().min(0), reason: text().max(500).optional() }).strict();
const historyQuery = z.object({ key: z.string().max(128).optional() }).strict();

/**
 * The tenant's settings and flags (tenant routes):
 * - `GET /settings`: the resolved values, where each came from, and the tenant's features
 *   (the `transcripts` flag, evaluated through OpenFeature for the current tenant).
 * - `PUT /settings/:key` (admins): an override, validated by the schema (400 SETTING_INVALID
 *   naming the key, nothing changed); `DELETE /settings/:key` removes it.
 * - `GET /settings/history`, `POST /settings/rollback` (admins).
 * Every write is versioned and audited; every instance sees it within a second.
 */
export function settingsRoutes(scope: FastifyInstance, options: SettingsRoutesOptions): void {
  const { reader, admin, features } = options;

  scope.get('/settings', async (request) => {
    memberOf(request);
    const snap = await reader.explain();
    return {
      settings: snap.values,
      sources: snap.sources,
      plan: snap.plan,
      version: snap.version,
      features: { transcripts: await features.getBooleanValue('transcripts', false) },
    };
  });

  scope.put('/settings/:key', async (request) => {
    adminOf(request);
    const { key } = parseInput(keyParams, request.params, 'params');
    const body = parseInput(setBody, request.body, 'body');
    // what a plan sells is not the tenant's to raise: its admins may lower a plan's limit, and
    // only staff (under a grant) may lift it above the plan
    if (
      PLAN_CAPPED.has(key) &&
      auditActor(request).actorKind !== 'staff' &&
      typeof body.value === 'number' &&
      // a value the schema refuses gets its SETTING_INVALID from the library
      settings.schema.shape[key as keyof typeof settings.schema.shape]?.safeParse(body.value).success
    ) {
      const { plan } = await reader.explain();
      const ceiling = settings.resolve(plan ?? undefined, {}).values[key as keyof typeof settings.schema.shape];
      if (typeof ceiling === 'number' && body.value > ceiling)
        throw new ApiError(
          403,
          'SETTING_ABOVE_PLAN',
          `${key} is at most ${ceiling} on this tenant's plan: a higher value is an operator's decision`,
          key,
        );
    }
    return admin.set(currentTenant(), key, body.value, changeMetaOf(request, body.reason));
  });

  scope.delete('/settings/:key', async (request) => {
    adminOf(request);
    const { key } = parseInput(keyParams, request.params, 'params');
    return admin.unset(currentTenant(), key, changeMetaOf(request));
  });

  scope.get('/settings/history', async (request) => {
    adminOf(request);
    const query = parseInput(historyQuery, request.query, 'query');
    return { items: await admin.history(currentTenant(), { ...(query.key ? { key: query.key } : {}), limit: 100 }) };
  });

  scope.post('/settings/rollback', async (request) => {
    adminOf(request);
    const body = parseInput(rollbackBody, request.body, 'body');
    return admin.rollback(currentTenant(), body.version, changeMetaOf(request, body.reason));
  });

  if (options.flagsAdmin) tenantFlagRoutes(scope, { flagsAdmin: options.flagsAdmin });
}
