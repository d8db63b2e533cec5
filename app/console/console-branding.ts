import type { FastifyInstance } from 'fastify';
import type { Queryable } from 'tenantry';
import { CONTRAST_RULES, contrastRatio, readBrand, readLogo } from 'tenantry/branding';
import { consoleTenant } from './console-tenant.js';

/**
 * The console's branding preview (read only): a tenant's brand as its sign-in page shows it, the
 * logo as a data URL (the console's CSP allows `img-src data:`), and each WCAG AA contrast pair
 * with its ratio. The brand is what the tenant's public sign-in page shows anyone: no grant needed.
 */
export function consoleBrandingRoutes(api: FastifyInstance, options: { catalogPool: Queryable }): void {
  const { catalogPool } = options;
  api.get('/console/api/tenants/:tenant/brand', async (request) => {
    const tenant = await consoleTenant(catalogPool, request);
    const snap = (await readBrand(catalogPool, tenant.id))!;
    const { brand } = snap;
    const logo = brand.logo ? await readLogo(catalogPool, tenant.id, brand.logo.sha256) : undefined;
    return {
      brand,
      source: snap.source,
      version: snap.version,
      logo: logo ? `data:${logo.contentType};base64,${logo.bytes.toString('base64')}` : null,
      contrast: CONTRAST_RULES.map((r) => ({
        pair: r.what,
        field: r.field,
        ratio: contrastRatio(brand.colors[r.fg], brand.colors[r.bg]),
        min: r.min,
      })),
    };
  });
}
