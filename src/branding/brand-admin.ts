import type pg from 'pg';
import { toTenantId } from '../context/tenant-id.js';
import { InvalidArgumentError, TenantNotFoundError } from '../errors/tenantry-error.js';
import { checkMeta, inTransaction, type ChangeMeta, type TransactionPool } from '../settings/change-meta.js';
import { DEFAULT_SETTINGS_CHANNEL, settingsRouteOf, type SettingsFeed } from '../settings/settings-feed.js';
import { applyBrandInput, checkContrast, defaultBrand, parseBrandInput, type Brand } from './brand-schema.js';
import { BrandVersionNotFoundError } from './branding-errors.js';
import { inspectLogo, type LogoContentType, type LogoLimits } from './logo.js';

/** A brand change: any fields, and the logo's bytes (`null` removes it; absent keeps it). */
export interface BrandChange {
  displayName?: string;
  colors?: Partial<Brand['colors']>;
  emailSenderName?: string;
  logo?: Uint8Array | null;
  /** The upload's declared Content-Type: must agree with the bytes. */
  logoContentType?: string;
}

/** One line of a tenant's brand history. */
export interface BrandHistoryEntry {
  version: number;
  action: 'set' | 'rollback' | 'reset';
  /** `null`: the tenant had no brand of its own. */
  oldBrand: Brand | null;
  /** `null`: the tenant has none since (a reset). */
  newBrand: Brand | null;
  actor: string;
  reason: string | null;
  changedAt: Date;
}

/** A tenant's brand as stored, and where it came from. */
export interface BrandSnapshot {
  brand: Brand;
  /** `default`: the tenant set none (its catalog name, default colours). */
  source: 'tenant' | 'default';
  /** The tenant's last brand change (0: none). */
  version: number;
  /** The tenant's slug (a sign-in form names its tenant by it). */
  slug: string;
}

/** Options of {@link BrandAdmin}. */
export interface BrandAdminOptions {
  /** The catalog database as the owner role. */
  db: TransactionPool;
  /** Rings other instances after a commit when the transport is Redis (PostgreSQL rings by itself). */
  feed?: SettingsFeed;
  /** The NOTIFY channel (default `tenantry_settings`, the settings feed's). */
  channel?: string;
  /** Logo limits (default 256 KiB, 2048 px a side). */
  logo?: LogoLimits;
}

/** Reads a tenant's stored brand (or its default) through any connection of the owner role. */
export async function readBrand(db: Pick<pg.Pool, 'query'>, tenantId: string): Promise<BrandSnapshot | undefined> {
  const { rows } = await db.query<{ name: string; slug: string; brand: Brand | null; version: string | null }>(
    `select t.name, t.slug, b.brand, b.version::text from tenantry.tenants t
       left join tenantry_private.tenant_brands b on b.tenant_id = t.id
      where t.id = $1 and t.deleted_at is null`,
    [tenantId],
  );
  const row = rows[0];
  if (!row) return undefined;
  if (row.brand) return { brand: row.brand, source: 'tenant', version: Number(row.version), slug: row.slug };
  const { rows: head } = await db.query<{ v: string | null }>(
    'select max(version)::text as v from tenantry_private.tenant_brand_history where tenant_id = $1',
    [tenantId],
  );
  return { brand: defaultBrand(row.name), source: 'default', version: Number(head[0]?.v ?? 0), slug: row.slug };
}

/** A tenant's logo of digest `sha256` (any version the history names), or `undefined`. */
export async function readLogo(
  db: Pick<pg.Pool, 'query'>,
  tenantId: string,
  sha256: string,
): Promise<{ contentType: LogoContentType; sha256: string; bytes: Buffer } | undefined> {
  const { rows } = await db.query<{ content_type: LogoContentType; bytes: Buffer }>(
    'select content_type, bytes from tenantry_private.tenant_brand_logos where tenant_id = $1 and sha256 = $2',
    [toTenantId(tenantId), sha256],
  );
  return rows[0] ? { contentType: rows[0].content_type, sha256, bytes: rows[0].bytes } : undefined;
}

/**
 * The control plane's side of branding: validated, versioned, audited, reversible changes of a
 * tenant's brand. Every change is one transaction: the tenant's brand lock is taken, the merged
 * brand is checked as a whole (text rules, WCAG AA contrast across the colours, the logo by its
 * content), the history gets old and new with who and why, the tenant's audit log an entry
 * (`brand.changed`, fields only), and the settings feed's channel a NOTIFY, so every instance's
 * {@link TenantBrands} drops the tenant's cached brand at commit. A refused change writes nothing.
 *
 * @example
 * const admin = new BrandAdmin({ db: ownerPool });
 * await admin.set(tenantId, { displayName: 'Acme', colors: { primary: '#0b5cad' } }, { actor: 'user:…' });
 */
export class BrandAdmin {
  readonly #db: TransactionPool;
  readonly #feed: SettingsFeed | undefined;
  readonly #channel: string;
  readonly #logo: LogoLimits;

  constructor(options: BrandAdminOptions) {
    this.#db = options.db;
    this.#feed = options.feed;
    this.#channel = options.channel ?? DEFAULT_SETTINGS_CHANNEL;
    this.#logo = options.logo ?? {};
  }

  /** The tenant's brand (its own, or the default) with its version. */
  async get(tenantId: string): Promise<BrandSnapshot> {
    const snap = await readBrand(this.#db, toTenantId(tenantId));
    if (!snap) throw new TenantNotFoundError();
    return snap;
  }

  /** Changes some fields (and the logo); the rest keep their value. */
  async set(tenantId: string, change: BrandChange, meta: ChangeMeta): Promise<BrandSnapshot> {
    const { logo, logoContentType, ...fields } = change ?? {};
    const parsed = parseBrandInput(fields);
    const facts =
      logo === undefined || logo === null
        ? logo
        : inspectLogo(logo, { ...this.#logo, ...(logoContentType ? { declared: logoContentType } : {}) });
    return this.#change(tenantId, meta, 'set', async (current, client, tenant) => {
      const next = applyBrandInput(current, parsed);
      if (facts === null) next.logo = null;
      else if (facts !== undefined) {
        await client.query(
          `insert into tenantry_private.tenant_brand_logos (tenant_id, sha256, content_type, bytes) values ($1, $2, $3, $4)
           on conflict (tenant_id, sha256) do nothing`,
          [tenant, facts.sha256, facts.contentType, Buffer.from(logo!)],
        );
        next.logo = facts;
      }
      return next;
    });
  }

  /** Back to the default brand (the history keeps what it was). */
  async reset(tenantId: string, meta: ChangeMeta): Promise<BrandSnapshot> {
    return this.#change(tenantId, meta, 'reset', () => null);
  }

  /** Puts the brand back as it was right after change `version` (0: the default), as a new change. */
  async rollback(tenantId: string, version: number, meta: ChangeMeta): Promise<BrandSnapshot> {
    if (!Number.isSafeInteger(version) || version < 0)
      throw new InvalidArgumentError('version must be a whole number ≥ 0', 'version');
    return this.#change(tenantId, meta, 'rollback', async (_current, client, tenant, head) => {
      if (version > head) throw new BrandVersionNotFoundError(version);
      if (version === 0) return null;
      const { rows } = await client.query<{ new_brand: Brand | null }>(
        'select new_brand from tenantry_private.tenant_brand_history where tenant_id = $1 and version = $2',
        [tenant, version],
      );
      if (!rows[0]) throw new BrandVersionNotFoundError(version);
      const brand = rows[0].new_brand;
      if (brand) checkContrast(brand.colors); // as stored; rules may have tightened since
      return brand;
    });
  }

  /** The tenant's history, newest first. */
  async history(tenantId: string, options: { limit?: number } = {}): Promise<BrandHistoryEntry[]> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be 1 to 1000', 'limit');
    const { rows } = await this.#db.query<{
      version: string;
      action: BrandHistoryEntry['action'];
      old_brand: Brand | null;
      new_brand: Brand | null;
      actor: string;
      reason: string | null;
      changed_at: Date;
    }>(
      `select version::text, action, old_brand, new_brand, actor, reason, changed_at
         from tenantry_private.tenant_brand_history where tenant_id = $1 order by version desc limit $2`,
      [toTenantId(tenantId), limit],
    );
    return rows.map((r) => ({
      version: Number(r.version),
      action: r.action,
      oldBrand: r.old_brand,
      newBrand: r.new_brand,
      actor: r.actor,
      reason: r.reason,
      changedAt: r.changed_at,
    }));
  }

  async #change(
    tenantId: string,
    meta: ChangeMeta,
    action: BrandHistoryEntry['action'],
    plan: (current: Brand, client: pg.PoolClient, tenant: string, head: number) => Brand | null | Promise<Brand | null>,
  ): Promise<BrandSnapshot> {
    const tenant = toTenantId(tenantId);
    const who = checkMeta(meta);
    const result = await inTransaction(this.#db, async (client) => {
      const found = await client.query('select 1 from tenantry.tenants where id = $1 for key share', [tenant]);
      if (found.rows.length === 0) throw new TenantNotFoundError();
      // one writer per tenant at a time: the history's next number is read under this lock
      await client.query(`select pg_advisory_xact_lock(hashtextextended('tenantry.brand:' || $1, 0))`, [tenant]);
      const snap = (await readBrand(client, tenant))!;
      const stored = snap.source === 'tenant' ? snap.brand : null;
      const next = await plan(snap.brand, client, tenant, snap.version);
      if (JSON.stringify(next) === JSON.stringify(stored)) return snap; // nothing changes: nothing recorded
      const version = snap.version + 1;
      if (next === null)
        await client.query('delete from tenantry_private.tenant_brands where tenant_id = $1', [tenant]);
      else
        await client.query(
          `insert into tenantry_private.tenant_brands (tenant_id, brand, version) values ($1, $2, $3)
           on conflict (tenant_id) do update set brand = excluded.brand, version = excluded.version, updated_at = clock_timestamp()`,
          [tenant, JSON.stringify(next), version],
        );
      await client.query(
        `insert into tenantry_private.tenant_brand_history (tenant_id, version, action, old_brand, new_brand, actor, reason)
         values ($1, $2, $3, $4, $5, $6, $7)`,
        [
          tenant,
          version,
          action,
          stored && JSON.stringify(stored),
          next && JSON.stringify(next),
          who.actor,
          who.reason,
        ],
      );
      // the fields that changed as served (a default counts as the old value), never the values
      const after = (await readBrand(client, tenant))!;
      const fields = changedFields(snap.brand, after.brand);
      await client.query(
        `insert into tenantry.audit_log (tenant_id, actor_kind, actor_id, action, reason, detail)
         values ($1, $2, $3, 'brand.changed', $4, $5)`,
        [tenant, who.actorKind, who.actorId, who.reason, { actor: who.actor, version, action, fields }],
      );
      await client.query('select pg_notify($1, $2)', [this.#channel, settingsRouteOf(tenant)]);
      return after;
    });
    await this.#feed?.publish(settingsRouteOf(tenant));
    return result;
  }
}

function changedFields(a: Brand, b: Brand): string[] {
  const flat = (x: Brand): Record<string, unknown> => ({
    displayName: x.displayName,
    emailSenderName: x.emailSenderName,
    ...Object.fromEntries(Object.entries(x.colors).map(([k, v]) => [`colors.${k}`, v])),
    logo: x.logo?.sha256 ?? null,
  });
  const fa = flat(a);
  const fb = flat(b);
  return [...new Set([...Object.keys(fa), ...Object.keys(fb)])].filter((k) => fa[k] !== fb[k]).sort();
}
