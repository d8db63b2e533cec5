import { describe, expect, it } from 'vitest';
import { clustersFromEnv } from '../../app/tiers/clusters-from-env.js';

// TENANTRY_CLUSTERS: more PostgreSQL servers for the reference server. Bad input fails start-up
// with a message that says what is wrong, and never echoes a URL (it may hold a password).
describe('clustersFromEnv', () => {
  const eu = {
    ownerUrl: 'postgres://o:secret-o@eu/app',
    appUrl: 'postgres://a:secret-a@eu/app',
    adminUrl: 'postgres://postgres@eu/app',
  };

  it('is empty without the variable, or when it is blank', () => {
    expect(clustersFromEnv({})).toEqual({});
    expect(clustersFromEnv({ TENANTRY_CLUSTERS: '  ' })).toEqual({});
  });

  it('reads each cluster, the admin URL optional', () => {
    const { adminUrl: _, ...noAdmin } = eu;
    expect(clustersFromEnv({ TENANTRY_CLUSTERS: JSON.stringify({ eu, us_east: noAdmin }) })).toEqual({
      eu,
      us_east: noAdmin,
    });
  });

  it.each([
    ['not JSON', '{eu:', /not JSON/],
    ['a URL missing', JSON.stringify({ eu: { ownerUrl: eu.ownerUrl } }), /eu\.appUrl/],
    ['not a URL', JSON.stringify({ eu: { ...eu, appUrl: 'nope' } }), /eu\.appUrl/],
    ['an unknown key', JSON.stringify({ eu: { ...eu, password: 'x' } }), /eu/],
    ['"home" (the embedded or DATABASE_URL server)', JSON.stringify({ home: eu }), /home/],
    ['a name that is not an identifier', JSON.stringify({ 'EU-1': eu }), /EU-1 is not a cluster name/],
  ])('refuses %s', (_label, value, message) => {
    let error: Error | undefined;
    try {
      clustersFromEnv({ TENANTRY_CLUSTERS: value });
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(message);
    expect(error?.message).not.toContain('secret-');
  });
});
