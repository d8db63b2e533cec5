import type pg from 'pg';
import type { InstallRunOptions, Migration, TenantPool } from 'tenantry';
import { TenantOnboarding, type OnboardResult } from 'tenantry/lifecycle';
import type { DataPool } from '../recordings/recording-store.js';
import { dataMigrations, type ClusterUrls } from '../tiers/tenant-tiers.js';

/** A sign-up's input, validated by the route. */
export interface SignUpInput {
  slug: string;
  name: string;
  email: string;
  plan?: string;
}

/** What a sign-up made: the tenant, where it lives, and the owner's invitation code (once). */
export interface SignUpResult {
  outcome: OnboardResult['outcome'];
  tenant: { id: string; slug: string; name: string; tier: string };
  /** The invitation's code when this call issued it (also in app_private.outbox, for the mailer). */
  code?: string;
  expiresAt?: Date;
}

/** The reference server's sign-up: the library's onboarding with the server's migrations, seed and outbox. */
export interface TenantSignUp {
  signUp(input: SignUpInput): Promise<SignUpResult>;
  end(): Promise<void>;
}

/**
 * Onboards a tenant for `POST /sign-up` with the library's `TenantOnboarding`: the placement
 * policy's tier (the plan), the server's data migrations in a new schema or database, a seed of
 * its defaults (the tenant's live event stream row), and an owner invitation delivered to the
 * outbox by `app.send_invitation` in the transaction that issued it.
 */
export function tenantSignUp(options: {
  /** The home database as the owner role (a pool of its own: onboarding holds one connection per call). */
  catalog: pg.Pool;
  clusters: Record<string, ClusterUrls>;
  install: InstallRunOptions;
  /** The app role on the home database (invitations). */
  appPool: TenantPool;
  /** Where tenant data lives (the seed). */
  dataPool: DataPool;
  /** The tenant data's migrations, plugins' included; default `dataMigrations()`. */
  migrations?: Migration[];
}): TenantSignUp {
  // codes delivered during a call, handed back to that call's answer (keyed by tenant)
  const delivered = new Map<string, { code: string; expiresAt: Date }>();
  const build = (migrations: Migration[]) =>
    new TenantOnboarding({
      catalog: options.catalog,
      owners: Object.fromEntries(Object.entries(options.clusters).map(([name, c]) => [name, c.ownerUrl])),
      admins: Object.fromEntries(
        Object.entries(options.clusters).flatMap(([name, c]) => (c.adminUrl ? [[name, c.adminUrl]] : [])),
      ),
      install: options.install,
      migrations,
      // idempotent: a re-run after a crash finds the row
      seed: async () => {
        await options.dataPool.query(
          `insert into tenant_event_streams (tenant_id) values (tenantry.current_tenant_id()) on conflict (tenant_id) do nothing`,
        );
      },
      invitations: {
        pool: options.appPool,
        deliver: async ({ client, tenantId, code, expiresAt }) => {
          await client.query('select app.send_invitation($1)', [code]);
          delivered.set(tenantId, { code, expiresAt });
        },
      },
    });
  // made on the first sign-up: the data migrations (the plugins' with app/data-migrations) load then
  let onboarding: Promise<TenantOnboarding> | undefined;
  const ready = () =>
    (onboarding ??= (options.migrations ? Promise.resolve(options.migrations) : dataMigrations()).then(build));
  return {
    async signUp(input) {
      const result = await (
        await ready()
      ).run({
        slug: input.slug,
        name: input.name,
        ownerEmail: input.email,
        ...(input.plan ? { plan: input.plan } : {}),
      });
      const invitation = delivered.get(result.tenant.id);
      delivered.delete(result.tenant.id);
      return {
        outcome: result.outcome,
        tenant: { id: result.tenant.id, slug: result.tenant.slug, name: result.tenant.name, tier: result.target.tier },
        ...(invitation ?? {}),
      };
    },
    end: async () => {
      if (onboarding) await (await onboarding).end();
    },
  };
}
