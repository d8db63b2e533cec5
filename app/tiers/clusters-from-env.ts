import { z } from 'zod';
import type { ClusterUrls } from './tenant-tiers.js';

const NAME = /^[a-z][a-z0-9_]{0,62}$/;
const url = z.string().url();
const clusterUrls = z.object({ ownerUrl: url, appUrl: url, adminUrl: url.optional() }).strict();

/**
 * More PostgreSQL servers for the reference server, from `TENANTRY_CLUSTERS` (JSON): each
 * cluster's shared database as the owner and the app role, and a superuser URL where tenant
 * databases may be created (Tenantry is installed there at start-up with the home's roles).
 *
 * @example TENANTRY_CLUSTERS='{"eu":{"adminUrl":"postgres://postgres@eu-db/app","ownerUrl":"postgres://tenantry_owner:…@eu-db/app","appUrl":"postgres://tenantry_app:…@eu-db/app"}}'
 */
export function clustersFromEnv(env: NodeJS.ProcessEnv = process.env): Record<string, ClusterUrls> {
  const text = env.TENANTRY_CLUSTERS?.trim();
  if (!text) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('TENANTRY_CLUSTERS is not JSON: {"<name>": {"ownerUrl": …, "appUrl": …, "adminUrl": …}}');
  }
  const parsed = z.record(z.string(), clusterUrls).safeParse(json);
  if (!parsed.success)
    throw new Error(
      `TENANTRY_CLUSTERS: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  for (const name of Object.keys(parsed.data)) {
    if (!NAME.test(name) || name === 'home')
      throw new Error(`TENANTRY_CLUSTERS: ${name} is not a cluster name (lower-case letters, digits, _; not "home")`);
  }
  return parsed.data;
}
