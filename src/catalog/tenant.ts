import { z } from 'zod';

/**
 * Lifecycle status of a tenant. `deleted` is a soft delete: rows stay until purged.
 * `provisioning`: onboarding made it and has not finished; it serves nothing (held at the data
 * plane like a suspended tenant, answered as not found) until onboarding activates it.
 */
export type TenantStatus = 'active' | 'suspended' | 'deleted' | 'provisioning';

/** Where a tenant's rows live. The foundation places every tenant in the shared tier. */
export interface TenantPlacement {
  tier: 'shared' | 'schema' | 'database';
  [key: string]: unknown;
}

/** A tenant as the catalog records it. */
export interface Tenant {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  placement: TenantPlacement;
  settings: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
  suspendedAt: Date | null;
  deletedAt: Date | null;
}

/** Slugs: lower-case letters, digits and inner hyphens, 1-63 characters (usable as a subdomain). */
export const slugSchema = z
  .string()
  .regex(
    /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/,
    'slug: 1-63 of [a-z0-9-], starting and ending with a letter or digit',
  );

/** Input of TenantCatalog.create. */
export const newTenantSchema = z
  .object({
    slug: slugSchema,
    name: z.string().trim().min(1).max(200),
    settings: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type NewTenant = z.input<typeof newTenantSchema>;

/** Row shape of tenantry.tenants as node-postgres returns it. */
export interface TenantRow {
  id: string;
  slug: string;
  name: string;
  status: TenantStatus;
  placement: TenantPlacement;
  settings: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  suspended_at: Date | null;
  deleted_at: Date | null;
}

export function tenantFromRow(row: TenantRow): Tenant {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    status: row.status,
    placement: row.placement,
    settings: row.settings,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    suspendedAt: row.suspended_at,
    deletedAt: row.deleted_at,
  };
}
