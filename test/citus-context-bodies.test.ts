// Citus mode keeps core 005's context checks (issue 15): core 007's mirror of the local routes
// and holds (tenantry_private.context_gate) is kept in step by triggers, which Citus refuses on
// reference tables (the Citus step drops them), so on Citus the checks must read the reference
// tables themselves. A check that read the mirror there would miss a hold placed after the step.
import { describe, expect, it } from 'vitest';
import { citusBoundSignedFunction, citusCheckRouteSql, citusPrepareSql } from '../src/citus/citus-prepare-sql.js';

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
