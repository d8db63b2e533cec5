// The values and tenant states the signed check's differential tests try (core 008's fast path
// against core 007, core 009's remembered proofs against core 007), and how they ask.
import { createHmac } from 'node:crypto';
import type pg from 'pg';
import { ContextSigner, hmacPads } from '../../src/data/context-signer.js';
import type { TestDatabase } from './test-database.js';
import { libraryMigrations } from '../../src/policy/library-migrations.js';

export function hmac(secret: string, payload: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8')).update(payload).digest('hex');
}
/** A value signed with `secret` in Tenantry's form (or not: the payload is taken as given). */
export const signWith = (secret: string, payload: string) => `${payload}.${hmac(secret, payload)}`;
const later = () => Math.floor(Date.now() / 1000) + 300;

/** The same uuid spelled 4-4-4-4-16: uuid_in reads it, but it is not the text holds and routes are keyed by. */
export function movedHyphens(t: string): string {
  const hex = t.replaceAll('-', '');
  return `${hex.slice(0, 4)}-${hex.slice(4, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16)}`;
}
/**
 * Values core 007 accepted though it should not have (found by the try-out of core 008, fixed in
 * core 008's both paths): core 008 refuses them, TR001, in every state.
 */
export const CORE_007_ACCEPTED_WRONGLY = new Set([
  'hyphens moved (uuid_in reads the same id)',
  'hyphens moved, on route 3',
]);

/** Core 007's function `fn`, as its migration's signed branch creates it, renamed into schema core007. */
export function core007(fn: 'current_tenant_id' | 'home_tenant_id'): string {
  const m = libraryMigrations().find((x) => x.feature === 'core' && x.version === 7)!;
  const start = m.template.indexOf(`$q$CREATE OR REPLACE FUNCTION tenantry.${fn}()`);
  const sql = m.template.slice(start + 3, m.template.indexOf('$q$', start + 3));
  if (start < 0 || !sql.includes('SECURITY DEFINER')) throw new Error(`no ${fn} in core 007`);
  return sql.replace(`FUNCTION tenantry.${fn}()`, `FUNCTION core007.${fn}()`);
}

/** The tenant or the SQLSTATE of `call` as the app role with `value` as the context (null: no context set). */
export async function outcome(client: pg.Client, value: string | null, call: string): Promise<string> {
  await client.query('begin');
  try {
    if (value !== null) await client.query(`select pg_catalog.set_config('tenantry.context', $1, true)`, [value]);
    const { rows } = await client.query(`select ${call}::text as id`);
    return `id:${rows[0].id}`;
  } catch (error) {
    return `error:${(error as { code?: string }).code}`;
  } finally {
    await client.query('rollback');
  }
}

/**
 * Every kind of value for tenant `t` the comparisons try, with `secret` the database's context
 * secret, `other` another tenant and `oldSecret` the previous key of a rotation's overlap.
 */
export function signedValues(
  t: string,
  secret: string,
  other: string,
  oldSecret: string,
): Array<[string, string | null]> {
  const exp = later();
  const signer = new ContextSigner(secret);
  const sign = (payload: string, key = secret) => signWith(key, payload);
  const base = `${t}.${exp}`;
  return [
    ['no context', null],
    ['empty', ''],
    ["Tenantry's signer, default route", signer.encode(t)],
    ["Tenantry's signer, route 3", signer.encode(t, 3)],
    ["Tenantry's signer, route 4", signer.encode(t, 4)],
    ['route 0 written out', sign(`${base}.0`)],
    ['expired', sign(`${t}.${exp - 3600}`)],
    ['expired one second ago', sign(`${t}.${Math.floor(Date.now() / 1000) - 1}`)],
    ['forged MAC', `${base}.${'0'.repeat(64)}`],
    ['MAC of another payload', `${base}.${hmac(secret, `${other}.${exp}`)}`],
    ['another tenant swapped in', sign(`${other}.${exp}`).replace(other, t)],
    ['tampered expiry', sign(base).replace(`.${exp}.`, `.${exp + 1}.`)],
    ['another secret', sign(base, 'a-different-secret-of-enough-length-00000000000')],
    ['previous key of the overlap', sign(base, oldSecret)],
    ['upper-case id', sign(`${t.toUpperCase()}.${exp}`)],
    ['id in braces', sign(`{${t}}.${exp}`)],
    ['id without dashes', sign(`${t.replaceAll('-', '')}.${exp}`)],
    ['hyphens moved (uuid_in reads the same id)', sign(`${movedHyphens(t)}.${exp}`)],
    ['hyphens moved, on route 3', sign(`${movedHyphens(t)}.${exp}.3`)],
    ['zero-padded expiry', sign(`${t}.${'0'.repeat(40)}${exp}`)],
    ['zero-padded route', sign(`${base}.${'0'.repeat(40)}3`)],
    ['non-digit expiry', sign(`${t}.${exp}x`)],
    ['hex letters in the expiry', sign(`${t}.abc`)],
    ['empty route part', sign(`${base}.`)],
    ['two route parts', sign(`${base}.1.2`)],
    ['separator before the MAC is not a dot', `${base}x${hmac(secret, base)}`],
    ['upper-case MAC', `${base}.${hmac(secret, base).toUpperCase()}`],
    ['MAC one character short', sign(base).slice(0, -1)],
    ['trailing character', `${sign(base)}0`],
    ['leading space', ` ${sign(base)}`],
    ['newline inside', sign(`${t}.\n${exp}`)],
    ['unicode in the id', sign(`${t.slice(0, 35)}é.${exp}`)],
    ['long expiry', sign(`${t}.${'9'.repeat(25)}`)],
    ['no MAC', base],
    ['bare id', t],
    ['garbage', 'x'.repeat(120)],
    ['many dots', '.'.repeat(113)],
  ];
}

/** Tenant $A's states the comparisons set up, as the owner (the gate follows in the same transaction). */
export const STATES: Array<[string, string[]]> = [
  ['no row here', []],
  [
    'local, active, epoch 3',
    [`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'active', 3)`],
  ],
  [
    'local, active, epoch 0',
    [`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'active', 0)`],
  ],
  ['local, frozen', [`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'frozen', 3)`]],
  ['local, moved', [`insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'moved', 3)`]],
  ['suspended', [`insert into tenantry.inactive_tenants (tenant_key, status) values ('$A', 'suspended')`]],
  ['deleted', [`insert into tenantry.inactive_tenants (tenant_key, status) values ('$A', 'deleted')`]],
  [
    'local on epoch 3 and suspended',
    [
      `insert into tenantry.local_tenants (tenant_key, state, epoch) values ('$A', 'active', 3)`,
      `insert into tenantry.inactive_tenants (tenant_key, status) values ('$A', 'suspended')`,
    ],
  ],
  ['this database does not serve the default route', [`update tenantry.local_route set serves_default = false`]],
];

/**
 * The comparison's database: core 007's two functions beside the installed ones (schema core007,
 * owned by the owner role), a rotation's overlap with `oldSecret` as the previous key for the next
 * hour, and a tenant table `notes` with one row of `a` and one of `b`.
 */
export async function prepareComparison(db: TestDatabase, a: string, b: string, oldSecret: string): Promise<void> {
  await db.admin.query(`create schema core007; grant usage on schema core007 to ${db.appRole}`);
  for (const fn of ['current_tenant_id', 'home_tenant_id'] as const) {
    await db.admin.query(core007(fn));
    await db.admin.query(`alter function core007.${fn}() owner to ${db.ownerRole}`);
  }
  await db.admin.query(`alter schema core007 owner to ${db.ownerRole}`);
  const old = hmacPads(oldSecret);
  await db.admin.query(
    `update tenantry_private.context_key set previous_ipad = $1, previous_opad = $2, previous_until = now() + interval '1 hour'`,
    [old.ipad, old.opad],
  );
  await db.owner.query(`
    create table notes (tenant_id uuid not null, id serial, body text not null, primary key (tenant_id, id));
    select tenantry.register_tenant_table('notes');`);
  await db.owner.query(`insert into notes (tenant_id, body) values ($1, 'a1'), ($2, 'b1')`, [a, b]);
}
