import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ApiKeys, AuditLog, TenantDomains, TenantryError, type Queryable, type TxtResolver } from 'tenantry';
import { adminOf } from '../auth/tenant-scope.js';
import { auditActor } from '../auth/audit-actor.js';
import { notFound, validationFailed } from '../http/api-error.js';
import { bigintId, int, parseInput, queryInt, text, uuid } from '../http/validation.js';

const idParams = z.object({ id: uuid() });
const newKey = z.object({ name: text().trim().min(1).max(200), expiresInDays: int(1, 3650).optional() }).strict();
const domainBody = z.object({ domain: text().trim().min(3).max(253) }).strict();
const domainParams = z.object({ domain: text().min(3).max(253) });
const auditQuery = z.object({ limit: queryInt(1, 500).default(50), before: bigintId().optional() }).strict();

/**
 * The tenant's access settings (owners and admins; staff under a grant):
 * - API keys: `GET /api-keys`, `POST /api-keys` (the key is in this answer only), `DELETE /api-keys/:id`;
 * - custom domains: `GET /domains`, `POST /domains`, `POST /domains/:domain/verify` (DNS TXT), `DELETE /domains/:domain`;
 * - the audit log: `GET /audit-log?limit&before` (staff access included, newest first).
 */
export function accessRoutes(
  scope: FastifyInstance,
  {
    appPool,
    resolveTxt,
    baseDomain,
  }: {
    appPool: Queryable;
    resolveTxt?: TxtResolver;
    /** The resolver's base domain: a custom domain under it is refused (400 DOMAIN_RESERVED). */
    baseDomain?: string;
  },
): void {
  const keys = new ApiKeys(appPool);
  const domains = new TenantDomains(appPool, {
    ...(resolveTxt ? { resolveTxt } : {}),
    ...(baseDomain ? { baseDomain } : {}),
  });
  const audit = new AuditLog(appPool);

  scope.get('/api-keys', async (request) => {
    adminOf(request);
    return { items: await keys.list() };
  });

  scope.post('/api-keys', async (request, reply) => {
    adminOf(request);
    const { name, expiresInDays } = parseInput(newKey, request.body, 'body');
    const who = auditActor(request);
    const created = await keys.create({
      name,
      createdBy: who.actorKind === 'user' ? who.actorId : undefined,
      expiresAt: expiresInDays ? new Date(Date.now() + expiresInDays * 86_400_000) : undefined,
    });
    await audit.record({ ...who, action: 'api_key.created', detail: { keyId: created.id, name } });
    return reply.code(201).send(created);
  });

  scope.delete('/api-keys/:id', async (request, reply) => {
    adminOf(request);
    const { id } = parseInput(idParams, request.params, 'params');
    if (!(await keys.revoke(id))) throw notFound('API key');
    await audit.record({ ...auditActor(request), action: 'api_key.revoked', detail: { keyId: id } });
    return reply.code(204).send();
  });

  scope.get('/domains', async (request) => {
    adminOf(request);
    return { items: await domains.list() };
  });

  scope.post('/domains', async (request, reply) => {
    adminOf(request);
    const { domain } = parseInput(domainBody, request.body, 'body');
    const added = await domains.add(domain).catch(asValidation);
    await audit.record({ ...auditActor(request), action: 'domain.added', detail: { domain: added.domain } });
    return reply.code(201).send(added);
  });

  scope.post('/domains/:domain/verify', async (request) => {
    adminOf(request);
    const { domain } = parseInput(domainParams, request.params, 'params');
    const verified = await domains.verify(domain).catch(asValidation);
    await audit.record({ ...auditActor(request), action: 'domain.verified', detail: { domain: verified.domain } });
    return verified;
  });

  scope.delete('/domains/:domain', async (request, reply) => {
    adminOf(request);
    const { domain } = parseInput(domainParams, request.params, 'params');
    if (!(await domains.remove(domain).catch(asValidation))) throw notFound('Domain');
    await audit.record({ ...auditActor(request), action: 'domain.removed', detail: { domain } });
    return reply.code(204).send();
  });

  scope.get('/audit-log', { config: { query: auditQuery } }, async (request) => {
    adminOf(request);
    const { limit, before } = parseInput(auditQuery, request.query, 'query');
    const items = await audit.list({ limit, before });
    return { items, nextBefore: items.length === limit ? items.at(-1)!.id : null };
  });
}

/**
 * The library refuses a domain it cannot take (INVALID_ARGUMENT naming the field): answered as
 * every other route answers bad input, 400 VALIDATION_FAILED.
 */
function asValidation(error: unknown): never {
  if (error instanceof TenantryError && error.code === 'INVALID_ARGUMENT' && error.status === 400)
    throw validationFailed(error.message, typeof error.details.field === 'string' ? error.details.field : 'domain');
  throw error;
}
