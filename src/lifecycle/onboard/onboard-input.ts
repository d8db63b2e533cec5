import { z } from 'zod';
import { slugSchema } from '../../catalog/tenant.js';
import { InvalidArgumentError } from '../../errors/tenantry-error.js';

/** Input of an onboarding: the tenant, its plan (read by the placement policy) and its first owner. */
export const onboardInputSchema = z
  .object({
    slug: slugSchema,
    name: z.string().trim().min(1, 'name: 1-200 characters').max(200, 'name: 1-200 characters'),
    plan: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'plan: 1-63 of [a-z0-9_-], starting with a letter or digit')
      .optional(),
    ownerEmail: z
      .string()
      .trim()
      .toLowerCase()
      .max(254, 'ownerEmail: at most 254 characters')
      .regex(/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'ownerEmail must be an email address')
      .optional(),
  })
  .strict();

/** What `onboardTenant` / `TenantOnboarding.run` take. */
export type OnboardInput = z.input<typeof onboardInputSchema>;

/** Validated input (INVALID_ARGUMENT naming the field otherwise). */
export function parseOnboardInput(input: unknown): z.output<typeof onboardInputSchema> {
  const result = onboardInputSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || undefined;
    throw new InvalidArgumentError(
      field && !issue.message.startsWith(field) ? `${field}: ${issue.message}` : issue.message,
      field,
    );
  }
  return result.data;
}
