import { z } from 'zod';
import { defineFlags, defineSettings } from 'tenantry/settings';
import { plugins } from '../plugins/registry.js';
import { byPlan, PLAN_NAMES, PLANS } from '../plans.js';

/**
 * The reference server's per-tenant settings and flags. `tenantry tenants settings …` loads this
 * module (`--definition app/settings/definition.ts`, under `npm run tenantry`) to validate with
 * the same schema the server reads with.
 */
export const settings = defineSettings({
  schema: z.object({
    /** Shown by GET /settings and the welcome line of GET /me-style pages. */
    welcomeMessage: z.string().min(1).max(200).default('Welcome to your workspace'),
    /** Recordings older than this are due for clean-up. */
    recordingRetentionDays: z.number().int().min(1).max(3650).default(30),
    maxRecordingMinutes: z.number().int().positive().max(600).default(30),
    // the plugins' own settings, as `<plugin>.<key>` (transcripts.language, webhooks.timeoutMs)
    ...plugins.settingsShape,
  }),
  defaults: { recordingRetentionDays: 90 },
  // by the server's plan names (app/plans.ts): the same names as rate limits and sign-up
  plans: byPlan((spec) => spec.settings),
});

/** Transcripts: the plans that include them (app/plans.ts), and any tenant an operator turns it on for. */
export const flags = defineFlags({
  transcripts: {
    off: false,
    plans: PLAN_NAMES.filter((plan) => PLANS[plan].transcripts),
    description: 'automatic transcripts of recordings',
  },
});
