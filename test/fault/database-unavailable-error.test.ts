import { describe, expect, it } from 'vitest';
import { toErrorAnswer } from '../../app/http/error-handler.js';
import { DatabaseUnavailableError, isDatabaseUnavailable } from '../../src/errors/database-unavailable-error.js';
import { TenantNotFoundError, TenantryError } from '../../src/errors/tenantry-error.js';
import { PoolTimeoutError } from '../../src/errors/wait-errors.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('DatabaseUnavailableError.from', () => {
  it('classifies connection failures by SQLSTATE, socket code and node-postgres message', () => {
    for (const code of ['57P01', '57P02', '57P03', '53300', '08006', '08001', 'ECONNREFUSED', 'ECONNRESET'])
      expect(DatabaseUnavailableError.from(withCode(code))?.reason).toBe(code);
    for (const message of [
      'Connection terminated unexpectedly',
      'Connection terminated due to connection timeout',
      'timeout exceeded when trying to connect',
    ])
      expect(isDatabaseUnavailable(new Error(message))).toBe(true);
    // through a cause chain, and an AggregateError (both loopback addresses refused)
    expect(isDatabaseUnavailable(new Error('wrapped', { cause: withCode('57P01') }))).toBe(true);
    expect(isDatabaseUnavailable(new AggregateError([withCode('ECONNREFUSED')]))).toBe(true);
  });

  it('leaves everything else alone: bad input, refusals, other server errors', () => {
    for (const code of ['22021', '23505', '42501', '57014', '40001'])
      expect(isDatabaseUnavailable(withCode(code))).toBe(false);
    expect(isDatabaseUnavailable(new TenantNotFoundError())).toBe(false);
    expect(isDatabaseUnavailable(new Error('Connection string contains Connection terminated'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
    // a refusal of the caller stays a refusal even when a connection failure caused it
    expect(
      isDatabaseUnavailable(new TenantryError('UNAUTHENTICATED', 'no', { status: 401, cause: withCode('57P01') })),
    ).toBe(false);
    // and a Tenantry error keeps its own code (a checkout timeout is POOL_TIMEOUT, not an outage)
    expect(
      isDatabaseUnavailable(new PoolTimeoutError(1000, new Error('timeout exceeded when trying to connect'))),
    ).toBe(false);
  });

  it('is answered 503 DATABASE_UNAVAILABLE by the reference server, with no connection detail', () => {
    const answer = toErrorAnswer(withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'));
    expect(answer.status).toBe(503);
    expect(answer.body.error.code).toBe('DATABASE_UNAVAILABLE');
    expect(JSON.stringify(answer.body)).not.toContain('5432');
    expect(toErrorAnswer(new Error('boom')).status).toBe(500);
  });
});
