// Citus mode keeps core 005's context checks (issue 15): core 007's mirror of the local routes
// and holds (tenantry_private.context_gate) is kept in step by triggers, which Citus refuses on
// reference tables (the Citus step drops them), so on Citus the checks must read the reference
// tables themselves. A check that read the mirror there would miss a hold placed after the step.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { citusBoundSignedFunction, citusCheckRouteSql, citusPrepareSql } from '../src/citus/citus-prepare-sql.js';
import { createTestDatabase } from './support/test-database.js';

describe('the context checks of the Citus step', () => {
  it('read the route and hold tables themselves, never the mirror', () => {
    for (const sql of [
      citusCheckRouteSql(),
      citusBoundSignedFunction('current_tenant_id'),
      citusBoundSignedFunction('home_tenant_id'),
    ]) {
      expect(sql).toContain('tenantry.inactive_tenants');
      expect(sql).not.toContain('context_gate');
    }
    expect(citusBoundSignedFunction('current_tenant_id')).toContain('tenantry.local_tenants');
    expect(citusCheckRouteSql()).toContain('tenantry.local_tenants');
  });

  it('drop the mirror’s triggers before the tables become reference tables, in both modes', () => {
    for (const contextMode of ['signed', 'unsigned'] as const) {
      const sql = citusPrepareSql({ appRole: 'app', ownerRole: 'owner', contextMode, eventTrigger: true });
      for (const trigger of [
        'context_gate_local ON tenantry.local_tenants',
        'context_gate_local_truncate ON tenantry.local_tenants',
        'context_gate_hold ON tenantry.inactive_tenants',
        'context_gate_hold_truncate ON tenantry.inactive_tenants',
        'context_gate_route ON tenantry.local_route',
        'context_key_route ON tenantry_private.context_key',
      ])
        expect(sql).toContain(`DROP TRIGGER IF EXISTS ${trigger}`);
      expect(sql.indexOf('DROP TRIGGER IF EXISTS context_gate_local')).toBeLessThan(
        sql.indexOf('create_reference_table'),
      );
      expect(sql).toContain('CREATE OR REPLACE FUNCTION tenantry.check_route(p_context text)');
    }
  });
});

describe("the Citus step's signed check reads only the canonical id (core 008's format)", () => {
  it('an id with its hyphens moved is malformed (TR001) before anything else; the canonical one passes the format', async () => {
    const db = await createTestDatabase();
    try {
      await db.admin.query('create schema citus_body');
      for (const fn of ['current_tenant_id', 'home_tenant_id'] as const)
        await db.admin.query(
          citusBoundSignedFunction(fn).replace(`FUNCTION tenantry.${fn}()`, `FUNCTION citus_body.${fn}()`),
        );
      const id = randomUUID();
      const hex = id.replaceAll('-', '');
      const moved = `${hex.slice(0, 4)}-${hex.slice(4, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16)}`;
      const exp = Math.floor(Date.now() / 1000) + 300;
      const outcome = async (fn: string, value: string) => {
        const client = await db.admin.connect();
        try {
          await client.query('begin');
          await client.query(`select set_config('tenantry.context', $1, true)`, [value]);
          await client.query(`select citus_body.${fn}()`);
          return 'passed';
        } catch (error) {
          return `${(error as { code?: string }).code} ${(error as Error).message}`;
        } finally {
          await client.query('rollback');
          client.release();
        }
      };
      for (const fn of ['current_tenant_id', 'home_tenant_id']) {
        for (const value of [`${moved}.${exp}.${'0'.repeat(64)}`, `${id.toUpperCase()}.${exp}.${'0'.repeat(64)}`])
          expect(await outcome(fn, value), `${fn} ${value}`).toBe('TR001 tenantry: malformed tenant context');
        // the canonical id gets past the format to the proof, which needs Citus here (42883 without it)
        expect(await outcome(fn, `${id}.${exp}.${'0'.repeat(64)}`), fn).toMatch(
          /^(42883|TR001 tenantry: tenant context signature invalid)/,
        );
      }
    } finally {
      await db.drop();
    }
  });
});
