import { TenantryError } from '../errors/tenantry-error.js';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Validates a role, schema or table name built at run time: lower-case, [a-z0-9_], under 63 bytes. */
export function validIdentifier(name: string, what = 'identifier'): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || Buffer.byteLength(name) > 63) {
    throw new TenantryError(
      'INVALID_IDENTIFIER',
      `Invalid ${what}: use 1-63 characters of [a-z0-9_], starting with a letter or _`,
      {
        status: 400,
        details: { what },
      },
    );
  }
  return name;
}

/** Validates then double-quotes an identifier. The one quoting helper for run-time DDL. */
export function quoteIdent(name: string, what?: string): string {
  return `"${validIdentifier(name, what)}"`;
}

/** Quotes a qualified name `schema.table` (or a bare name) after validating each part. */
export function quoteQualified(name: string, what = 'table name'): string {
  const parts = name.split('.');
  if (parts.length > 2)
    throw new TenantryError('INVALID_IDENTIFIER', `Invalid ${what}`, { status: 400, details: { what } });
  return parts.map((p) => quoteIdent(p, what)).join('.');
}

/** Quotes a string literal for DDL that cannot take parameters (e.g. role passwords). */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new TenantryError('INVALID_ARGUMENT', 'Literal contains a NUL byte', { status: 400 });
  return `'${value.replace(/'/g, "''")}'`;
}
