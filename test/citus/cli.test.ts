// The Citus side of the command line, run as a subprocess against a fresh database of the
// cluster (issue 18, second try-out): `install --citus --dry-run` prints what --citus runs (the
// roles and schemas first, one statement at a time, the Citus step) and changes nothing;
// `tenantry citus where|isolate|move` refuse a table that is not a distributed tenant table (a
// reference table answered a shard), and a Citus refusal carries Citus's reason. Runs when
// CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { install } from '../../src/policy/installer.js';
import { createCitusDatabase, CITUS_SECRET, CITUS_URL, type CitusTestDatabase } from './citus-support.js';

const exec = promisify(execFile);
const TSX = path.resolve('node_modules/.bin/tsx');
const CLI = path.resolve('src/cli/main.ts');
const T = 'public.cli_notes';

describe.skipIf(!CITUS_URL)(
  CITUS_URL ? 'the tenantry CLI on Citus' : 'the tenantry CLI on Citus (skipped: CITUS_URL is not set)',
  () => {
    let cluster: CitusTestDatabase | undefined;
    let dir: string;
    const acme = randomUUID();

    /** The CLI as a subprocess: exit code, stdout and stderr. */
    const cli = async (...args: string[]) => {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TENANTRY_')));
      return exec(TSX, [CLI, '--database-url', cluster!.url, '--dir', dir, ...args], {
        env: clean,
        timeout: 180_000,
        maxBuffer: 64 * 1024 * 1024,
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? -1,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      );
    };

    beforeAll(async () => {
      cluster = await createCitusDatabase('app_cli');
      dir = path.join(await mkdtemp(path.join(os.tmpdir(), 'tenantry-citus-cli-')), '.tenantry');
    }, 120_000);

    afterAll(async () => {
      await cluster?.drop();
      if (dir) await rm(path.dirname(dir), { recursive: true, force: true });
    }, 60_000);

    it('install --citus --dry-run prints what --citus runs, one statement at a time with the Citus step, and changes nothing', async () => {
      const plain = await cli('install', '--dry-run');
      expect(plain.code, plain.stderr).toBe(0);
      expect(plain.stdout).not.toContain('-- 5. the Citus step');
      expect(plain.stdout).not.toContain('-- tenantry install --citus (citus ');
      const r = await cli('install', '--citus', '--dry-run');
      expect(r.code, r.stderr).toBe(0);
      const out = r.stdout;
      expect(out).toContain('-- tenantry install --citus (citus ');
      expect(out).toContain('-- 1. roles and schemas first, each committed at once');
      expect(out).toContain('CREATE SCHEMA IF NOT EXISTS "tenantry" AUTHORIZATION "tenantry_owner";');
      expect(out).toContain('-- 4. the grants step (Citus form');
      expect(out).toContain('-- 5. the Citus step (tenantry citus prepare), part 1 of 2');
      expect(out).toContain(`ALTER ROLE "tenantry_app" SET citus.propagate_set_commands = 'local';`);
      expect(out).toContain('create_reference_table');
      // in that order
      const at = (s: string) => out.indexOf(s);
      expect(at('-- 1. roles')).toBeLessThan(at('-- 2. the roles step'));
      expect(at('-- 2. the roles step')).toBeLessThan(at('-- 4. the grants step'));
      expect(at('-- 4. the grants step')).toBeLessThan(at('-- 5. the Citus step'));
      // every BEGIN is closed before the next one opens
      let open = false;
      for (const line of out.split('\n')) {
        if (line === 'BEGIN;') {
          expect(open).toBe(false);
          open = true;
        }
        if (line === 'COMMIT;') open = false;
      }
      expect(open).toBe(false);
      // nothing installed, no secret printed
      const installed = await cluster!.admin.query(`select to_regclass('tenantry.meta') is not null as meta`);
      expect(installed.rows).toEqual([{ meta: false }]);
      expect(out).not.toContain(CITUS_SECRET);
    }, 240_000);

    it('citus where|isolate|move refuse a table that is not a distributed tenant table, and a Citus refusal says why', async () => {
      await install(cluster!.url, { citus: true, contextSecret: CITUS_SECRET });
      const admin = cluster!.admin;
      await admin.query(`insert into tenantry.tenants (id, slug, name) values ($1, 'acme', 'Acme')`, [acme]);
      await admin.query(
        `create table ${T} (tenant_id uuid not null, id uuid not null default gen_random_uuid(), body text, primary key (tenant_id, id))`,
      );
      await admin.query(`alter table ${T} owner to tenantry_owner`);
      await admin.query(`set role tenantry_owner`);
      await admin.query(`select tenantry.citus_tenant_table('${T}')`);
      await admin.query(`reset role`);
      await admin.query(`create table public.cli_plain (tenant_id uuid not null, primary key (tenant_id))`);

      // before: a shard of the reference table was answered
      const refused = [
        ['tenantry.local_route', 'a reference table or a Citus local table'],
        ['public.cli_plain', 'not distributed'],
        ['public.no_such_table', 'No table public.no_such_table'],
      ] as const;
      for (const [table, why] of refused)
        for (const command of [
          ['where'],
          ['isolate', '--mode', 'block_writes'],
          ['move', '--to', '127.0.0.1:9701', '--mode', 'block_writes'],
        ]) {
          const r = await cli('citus', command[0]!, 'acme', '--table', table, ...command.slice(1));
          expect(r.code, `${command[0]} ${table}: ${r.stdout}`).not.toBe(0);
          expect(r.stderr).toContain('CITUS_SHARD');
          expect(r.stderr).toContain(why);
          expect(r.stderr).toContain('name a distributed tenant table');
        }
      const where = await cli('citus', 'where', 'acme', '--table', T);
      expect(where.code, where.stderr).toBe(0);
      expect(where.stdout).toMatch(/^shard \d+ on 127\.0\.0\.1:970[12] \(shared with other tenants\)/);

      // a move Citus refuses (no such node): Citus's own message is in the line
      const move = await cli('citus', 'move', 'acme', '--table', T, '--to', '127.0.0.1:9799', '--mode', 'block_writes');
      expect(move.code).not.toBe(0);
      expect(move.stderr).toContain('CITUS_SHARD: Citus refused to move the tenant shard: ');
      expect(move.stderr).toMatch(/SQLSTATE [0-9A-Z]{5}/);
      expect(move.stderr).not.toContain('Citus refused to move the tenant shard\n');
      // nothing moved
      expect((await cli('citus', 'where', 'acme', '--table', T)).stdout).toBe(where.stdout);
    }, 240_000);
  },
);
