import { tryCurrentTenant } from '../context/tenant-context.js';
import { PrismaIntegrationError } from './prisma-integration-error.js';

/** Prisma Client's request loader (internal): batches findUnique calls made in the same tick. */
interface RequestLoader {
  request(params: unknown): Promise<unknown>;
  readonly options: unknown;
}

interface ClientInternals {
  _requestHandler?: { dataloader?: unknown };
}

const PER_TENANT = Symbol.for('tenantry.prismaPerTenantLoader');

function isRequestLoader(value: unknown): value is RequestLoader {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as RequestLoader).request === 'function' &&
    typeof (value as RequestLoader).options === 'object' &&
    typeof (value as { batches?: unknown }).batches === 'object'
  );
}

/**
 * Makes a Prisma Client batch requests per tenant, and returns it.
 *
 * Why: Prisma Client merges the `findUnique` calls made in the same tick into one statement
 * (and sends the requests of batch `$transaction`s queued in that tick together). Its loader
 * dispatches every queued batch from one `process.nextTick` callback, which runs in the async
 * context of the first caller: with two tenants in flight, the second tenant's request ran
 * under the first tenant (its `findUnique` answered `null`; a batch transaction of the second
 * tenant would have written as the first). No public Prisma API reaches this, and a query
 * extension runs before the loader, so the loader itself is replaced: each tenant (and "no
 * tenant") gets a loader of its own for the current tick, made with the client's own loader
 * class and options. Batches then never mix tenants, and each is dispatched from a tick
 * scheduled by its own tenant's first caller, so it runs as that tenant. Batching within one
 * tenant is kept.
 *
 * Throws `PRISMA_CLIENT_UNSUPPORTED` when the client has no such loader (a Prisma version this
 * was not built for): silently leaving the cross-tenant batching in place is not an option.
 * Works on the client as constructed or on one made by `$extends` (it reaches the same loader,
 * which every client extended from it shares).
 *
 * @example
 * const prisma = tenantPrisma(new PrismaClient({ adapter: prismaAdapter(PrismaPg, pool) }));
 * const [a, b] = await Promise.all([
 *   runAs(tenantA, () => prisma.project.findUnique({ where: { id: idOfA } })),
 *   runAs(tenantB, () => prisma.project.findUnique({ where: { id: idOfB } })),
 * ]); // each gets its own row
 */
export function tenantPrisma<C extends object>(client: C): C {
  const handler = (client as ClientInternals)._requestHandler;
  const loader = handler?.dataloader;
  if (handler && typeof loader === 'object' && loader !== null && PER_TENANT in loader) return client;
  if (!handler || !isRequestLoader(loader))
    throw new PrismaIntegrationError(
      'PRISMA_CLIENT_UNSUPPORTED',
      'This Prisma Client has no request loader that tenantPrisma knows (Prisma 7 is supported): its same-tick batching could mix tenants',
    );
  handler.dataloader = perTenantLoader(loader);
  return client;
}

function perTenantLoader(original: RequestLoader): RequestLoader {
  const Loader = original.constructor as new (options: unknown) => RequestLoader;
  const options = original.options;
  // the loaders of the current tick, by tenant ('' for no tenant)
  const current = new Map<string, RequestLoader>();
  return {
    [PER_TENANT]: true,
    options,
    request(params: unknown): Promise<unknown> {
      const key = tryCurrentTenant() ?? '';
      let loader = current.get(key);
      if (!loader) {
        loader = new Loader(options);
        current.set(key, loader);
        // forget it after this tick: a loader keeps its queued batches until it dispatches
        // them, and the next tick's requests start a new one (no map growing with tenants)
        process.nextTick(() => current.delete(key));
      }
      return loader.request(params);
    },
  } as RequestLoader;
}
