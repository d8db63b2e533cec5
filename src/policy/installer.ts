import pg from 'pg';
import { ConfigurationError } from '../errors/tenantry-error.js';
import { hmacPads } from '../data/context-signer.js';
import { installSql, resolveInstallOptions, type InstallOptions } from './install-sql.js';

/** Options of {@link install}: the install options plus the signed-mode secret. */
export interface InstallRunOptions extends InstallOptions {
  /** Secret of signed mode (≥ 32 characters). Stored as HMAC pads in the private schema, never printed. */
  contextSecret?: string;
}

/**
 * Runs `tenantry install` against the database `adminUrl` points to (connect as a superuser,
 * or as a role allowed to create roles, schemas and event triggers). Idempotent.
 */
export async function install(adminUrl: string, options: InstallRunOptions = {}): Promise<void> {
  const resolved = resolveInstallOptions(options);
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ rolsuper: boolean }>(
      'select rolsuper from pg_roles where rolname = current_user',
    );
    if (resolved.eventTrigger && !rows[0]?.rolsuper) {
      throw new ConfigurationError(
        'The deny-by-default event trigger needs a superuser: run install as one, or pass eventTrigger: false (--no-event-trigger)',
      );
    }
    if (resolved.contextMode === 'signed' && !options.contextSecret) {
      const existing = await client.query(`select to_regclass('tenantry_private.context_key') is not null as present`);
      const hasKey = existing.rows[0]?.present
        ? (await client.query('select 1 from tenantry_private.context_key')).rowCount! > 0
        : false;
      if (!hasKey)
        throw new ConfigurationError(
          'Signed context mode needs a context secret on first install (TENANTRY_CONTEXT_SECRET or --context-secret)',
        );
    }
    try {
      await client.query(installSql(options));
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    if (options.contextSecret) await setContextSecret(client, options.contextSecret);
  } finally {
    await client.end();
  }
}

/** Stores (or rotates) the signed-mode key. Values signed with the old key stop verifying at once. */
export async function setContextSecret(admin: Pick<pg.Client, 'query'>, secret: string): Promise<void> {
  if (typeof secret !== 'string' || secret.length < 32)
    throw new ConfigurationError('The tenant context secret must be at least 32 characters');
  const { ipad, opad } = hmacPads(secret);
  await admin.query(
    `insert into tenantry_private.context_key (id, ipad, opad) values (true, $1, $2)
     on conflict (id) do update set ipad = excluded.ipad, opad = excluded.opad, created_at = now()`,
    [ipad, opad],
  );
}
