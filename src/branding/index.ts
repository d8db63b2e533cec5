/**
 * `tenantry/branding`: each tenant's brand (display name, colours held to WCAG AA contrast,
 * e-mail sender name, a raster logo checked by its content), versioned, audited, reversible,
 * cached per tenant in every instance. See docs/branding.md.
 */
export {
  brandInputSchema,
  parseBrandInput,
  applyBrandInput,
  checkContrast,
  contrastRatio,
  defaultBrand,
  CONTRAST_RULES,
  DEFAULT_BRAND_COLORS,
  type Brand,
  type BrandColors,
  type BrandInput,
} from './brand-schema.js';
export {
  inspectLogo,
  DEFAULT_LOGO_MAX_BYTES,
  DEFAULT_LOGO_MAX_SIDE,
  type LogoContentType,
  type LogoFacts,
  type LogoLimits,
} from './logo.js';
export {
  BrandAdmin,
  readBrand,
  readLogo,
  type BrandAdminOptions,
  type BrandChange,
  type BrandHistoryEntry,
  type BrandSnapshot,
} from './brand-admin.js';
export { TenantBrands, type TenantBrandsOptions, type LogoImage } from './tenant-brands.js';
export { BrandInvalidError, BrandLogoInvalidError, BrandVersionNotFoundError } from './branding-errors.js';
