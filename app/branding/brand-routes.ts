import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { currentTenant, type TenantResolver } from 'tenantry';
import { tenantRoutes } from 'tenantry/fastify';
import type { BrandAdmin, TenantBrands } from 'tenantry/branding';
import { changeMetaOf } from '../auth/audit-actor.js';
import { adminOf, memberOf } from '../auth/tenant-scope.js';
import { ApiError } from '../http/api-error.js';
import { parseInput, text } from '../http/validation.js';
import { signInPage } from './sign-in-page.js';

/** What the branding routes need. */
export interface BrandingOptions {
  /** Writes (owner pool): validated, versioned, audited. */
  admin: BrandAdmin;
  /** Reads of the current tenant's brand, cached per tenant, dropped on change in every instance. */
  brands: TenantBrands;
}

/** A logo upload's largest body: the library's limit (256 KiB) plus room to answer its own refusal. */
const LOGO_BODY_LIMIT = 512 * 1024;
const LOGO_TYPES = ['image/png', 'image/jpeg', 'image/webp'];
const LOGO_TYPES_HINT = 'Send the logo itself as the body, with Content-Type image/png, image/jpeg or image/webp';

const setBody = z
  .object({
    displayName: z.unknown().optional(),
    colors: z.unknown().optional(),
    emailSenderName: z.unknown().optional(),
    reason: text().max(500).optional(),
  })
  .strict();
const rollbackBody = z.object({ version: z.number().int().min(0), reason: text().max(500).optional() }).strict();
const reasonQuery = z.object({ reason: text().max(500).optional() }).strict();

/**
 * The public, branded pages of a tenant, named by the request's host (`<slug>.<baseDomain>` or a
 * verified custom domain; a credential must agree with it): `GET /sign-in` and `GET /brand/logo`.
 * No credentials needed (`allowAnonymous`): a visitor sees the sign-in page of the tenant whose
 * address they typed, and no other.
 */
export function brandPageRoutes(
  app: FastifyInstance,
  options: BrandingOptions & { resolver: TenantResolver<unknown> },
): void {
  const { brands } = options;
  app.register(async (scope) => {
    tenantRoutes(scope, { resolver: options.resolver, allowAnonymous: true, logIncomingRequest: true });

    scope.get('/sign-in', async (_request, reply) => {
      const snap = await brands.get();
      const nonce = randomBytes(16).toString('base64');
      const logoUrl = snap.brand.logo ? `/brand/logo?v=${snap.brand.logo.sha256.slice(0, 16)}` : null;
      securityHeaders(
        reply,
        `default-src 'none'; img-src 'self'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      );
      // the page names the tenant: never kept by a shared cache, revalidated by the browser
      reply.header('cache-control', 'no-store');
      reply.header('referrer-policy', 'no-referrer');
      reply.type('text/html; charset=utf-8');
      return signInPage({ brand: snap.brand, slug: snap.slug, logoUrl, nonce });
    });

    scope.get(
      '/brand/logo',
      { config: { query: z.object({ v: z.string().max(64).optional() }).strict() } },
      async (request, reply) => {
        const image = await brands.logo();
        if (!image) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'This tenant has no logo' } });
        const etag = `"${image.sha256}"`;
        securityHeaders(reply, "default-src 'none'; sandbox");
        reply.header('etag', etag);
        // per host, revalidated after a minute (a new logo has a new digest, hence a new ETag);
        // `private` when a credential chose the tenant, so no shared cache mixes tenants up
        const credentialed = request.headers.authorization !== undefined || request.headers['x-api-key'] !== undefined;
        reply.header('cache-control', `${credentialed ? 'private' : 'public'}, max-age=60`);
        reply.header('vary', 'Authorization, X-Api-Key, X-Tenant');
        reply.header('cross-origin-resource-policy', 'same-origin');
        const match = request.headers['if-none-match'];
        if (match && match.split(',').some((m) => m.trim().replace(/^W\//, '') === etag)) return reply.code(304).send();
        reply.type(image.contentType);
        return reply.send(image.bytes);
      },
    );
  });
}

function securityHeaders(reply: FastifyReply, csp: string): void {
  reply.header('content-security-policy', csp);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('x-frame-options', 'DENY');
}

/**
 * The brand API of the tenant scope: `GET /brand` (members), `PUT /brand` (fields),
 * `PUT /brand/logo` (the image as the body), `DELETE /brand/logo`, `GET /brand/history`,
 * `POST /brand/rollback` (owners, admins, staff acting as the tenant). Every change is checked
 * by the library (400 BRAND_INVALID / BRAND_LOGO_INVALID naming the field; nothing changed),
 * versioned and audited with the real actor.
 */
export function brandAdminRoutes(scope: FastifyInstance, options: BrandingOptions): void {
  const { admin } = options;

  scope.get('/brand', async (request) => {
    memberOf(request);
    const snap = await admin.get(currentTenant());
    return { brand: snap.brand, source: snap.source, version: snap.version };
  });

  scope.put('/brand', async (request) => {
    adminOf(request);
    const { reason, ...fields } = parseInput(setBody, request.body, 'body');
    const snap = await admin.set(currentTenant(), fields as never, changeMetaOf(request, reason));
    return { brand: snap.brand, source: snap.source, version: snap.version };
  });

  scope.register(async (logoScope) => {
    // only here: the raw image as the body (the rest of the API takes JSON alone)
    logoScope.addContentTypeParser(LOGO_TYPES, { parseAs: 'buffer', bodyLimit: LOGO_BODY_LIMIT }, (_r, body, done) =>
      done(null, body),
    );
    // any other type (JSON, SVG, a form): the logo's own 415, naming the types it takes
    logoScope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: LOGO_BODY_LIMIT }, (_r, _body, done) =>
      done(new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', LOGO_TYPES_HINT)),
    );
    logoScope.put('/brand/logo', { bodyLimit: LOGO_BODY_LIMIT, config: { query: reasonQuery } }, async (request) => {
      adminOf(request);
      const { reason } = parseInput(reasonQuery, request.query, 'query');
      const body = request.body;
      if (!Buffer.isBuffer(body)) throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', LOGO_TYPES_HINT);
      const snap = await admin.set(
        currentTenant(),
        { logo: body, logoContentType: request.headers['content-type'] ?? '' },
        changeMetaOf(request, reason),
      );
      return { brand: snap.brand, source: snap.source, version: snap.version };
    });
  });

  scope.delete('/brand/logo', { config: { query: reasonQuery } }, async (request) => {
    adminOf(request);
    const { reason } = parseInput(reasonQuery, request.query, 'query');
    const snap = await admin.set(currentTenant(), { logo: null }, changeMetaOf(request, reason));
    return { brand: snap.brand, source: snap.source, version: snap.version };
  });

  scope.get('/brand/history', async (request) => {
    adminOf(request);
    return { items: await admin.history(currentTenant(), { limit: 100 }) };
  });

  scope.post('/brand/rollback', async (request) => {
    adminOf(request);
    const body = parseInput(rollbackBody, request.body, 'body');
    const snap = await admin.rollback(currentTenant(), body.version, changeMetaOf(request, body.reason));
    return { brand: snap.brand, source: snap.source, version: snap.version };
  });
}
