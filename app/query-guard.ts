import { ConfigurationError } from 'tenantry';
import { loadTenantTables, QueryGuard, type GuardLogger, type GuardMode, type Queryable } from 'tenantry/guard';

const MODES: readonly GuardMode[] = ['off', 'report', 'enforce'];

/**
 * The guard mode from `TENANTRY_GUARD` (`off`, `report`, `enforce`); `enforce` when unset. The
 * reference server's statements are all scoped (test/app/guard.test.ts drives every route), so a
 * refusal there is a bug to see at once, not a warning to read later.
 */
export function guardModeFromEnv(env: NodeJS.ProcessEnv = process.env): GuardMode {
  const raw = env.TENANTRY_GUARD?.trim().toLowerCase() || 'enforce';
  if (!(MODES as readonly string[]).includes(raw))
    throw new ConfigurationError(`TENANTRY_GUARD must be one of ${MODES.join(', ')}, got ${raw}`);
  return raw as GuardMode;
}

/**
 * The query guard of the reference server's TenantPool: tenant tables read from the registry
 * (`ownerPool`: the app role cannot read it), so call after the migrations.
 */
export async function createQueryGuard(
  ownerPool: Queryable,
  options: { mode: GuardMode; logger?: GuardLogger },
): Promise<QueryGuard> {
  await QueryGuard.ready();
  const tables = await loadTenantTables(ownerPool);
  return new QueryGuard({ mode: options.mode, tables, ...(options.logger ? { logger: options.logger } : {}) });
}
