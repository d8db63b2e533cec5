// `tenantry doctor --citus` against what Citus itself refuses, on a real coordinator: for every
// finding of this mode a schema is planted that has that one problem, the doctor reports exactly
// that finding for it, and Citus refuses the schema (the error it gives is asserted). A clean
// schema gets no finding and Citus distributes it; Citus's own objects are never reported.
// Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { install } from '../../src/policy/installer.js';
import { runDoctor } from '../../src/policy/doctor.js';
import { CITUS_SECRET, CITUS_URL } from './citus-support.js';

const S = 'citus_doc';

interface Case {
  name: string;
  /** Tables (in schema S), registered as told; the tenant tables get the policy Citus accepts. */
  ddl: string[];
  tenant?: string[];
  global?: string[];
  /** Distributed (or reference) before the attempt, so that only the planted problem is left. */
  before?: string[];
  findings: string[];
  attempt: string;
  refusal: RegExp;
}

const CASES: Case[] = [
  {
    name: 'a primary key without the tenant column',
    ddl: [`create table ${S}.pk (tenant_id uuid not null, id bigint primary key)`],
    tenant: ['pk'],
    findings: [`PRIMARY_KEY_WITHOUT_TENANT ${S}.pk`],
    attempt: `select create_distributed_table('${S}.pk', 'tenant_id')`,
    refusal: /cannot create constraint on/i,
  },
  {
    name: 'a unique key without the tenant column',
    ddl: [
      `create table ${S}.uq (tenant_id uuid not null, id bigint, code text, primary key (tenant_id, id), constraint uq_code unique (code))`,
    ],
    tenant: ['uq'],
    findings: [`UNIQUE_WITHOUT_TENANT ${S}.uq`],
    attempt: `select create_distributed_table('${S}.uq', 'tenant_id')`,
    refusal: /cannot create constraint on/i,
  },
  {
    name: 'an exclusion constraint without the tenant column',
    ddl: [
      `create table ${S}.ex (tenant_id uuid not null, id bigint, slot int, primary key (tenant_id, id), constraint ex_slot exclude using btree (slot with =))`,
    ],
    tenant: ['ex'],
    findings: [`CITUS_EXCLUSION_WITHOUT_TENANT ${S}.ex`],
    attempt: `select create_distributed_table('${S}.ex', 'tenant_id')`,
    refusal: /cannot create constraint on/i,
  },
  {
    name: 'a foreign key to a local table',
    ddl: [
      `create table ${S}.loc (id bigint primary key)`,
      `create table ${S}.fkl (tenant_id uuid not null, id bigint, loc_id bigint references ${S}.loc (id), primary key (tenant_id, id))`,
      `create index on ${S}.fkl (loc_id)`,
    ],
    tenant: ['fkl'],
    findings: [`CITUS_FOREIGN_KEY_TO_LOCAL_TABLE ${S}.fkl`],
    attempt: `select create_distributed_table('${S}.fkl', 'tenant_id')`,
    refusal: /referenced table .* must be a distributed table or a reference table/i,
  },
  {
    name: 'a foreign key without the tenant column between tenant tables',
    ddl: [
      `create table ${S}.par (tenant_id uuid not null, id bigint, primary key (tenant_id, id), constraint par_id unique (tenant_id, id))`,
      `create unique index par_id_only on ${S}.par (id)`,
      `create table ${S}.chi (tenant_id uuid not null, id bigint, par_id bigint references ${S}.par (id), primary key (tenant_id, id))`,
      `create index on ${S}.chi (par_id)`,
    ],
    tenant: ['par', 'chi'],
    // a foreign key on (id) alone needs a unique key on (id) alone: both are reported, and the
    // referenced table is where Citus stops
    findings: [`FOREIGN_KEY_WITHOUT_TENANT ${S}.chi`, `UNIQUE_WITHOUT_TENANT ${S}.par_id_only`],
    attempt: `select create_distributed_table('${S}.par', 'tenant_id')`,
    refusal: /cannot create constraint on/i,
  },
  {
    name: 'a foreign key action Citus refuses on the distribution column',
    ddl: [
      `create table ${S}.p2 (tenant_id uuid not null, id bigint, primary key (tenant_id, id))`,
      `create table ${S}.c2 (tenant_id uuid not null, id bigint, p2_id bigint, primary key (tenant_id, id), foreign key (tenant_id, p2_id) references ${S}.p2 (tenant_id, id) on update cascade)`,
      `create index on ${S}.c2 (tenant_id, p2_id)`,
    ],
    tenant: ['p2', 'c2'],
    before: [`select create_distributed_table('${S}.p2', 'tenant_id')`],
    findings: [`CITUS_FOREIGN_KEY_ACTION ${S}.c2`],
    attempt: `select create_distributed_table('${S}.c2', 'tenant_id', colocate_with => '${S}.p2')`,
    refusal: /cannot create foreign key constraint/i,
  },
  {
    name: 'a global table referencing a tenant table',
    ddl: [
      `create table ${S}.tt (tenant_id uuid not null, id bigint, primary key (tenant_id, id))`,
      `create table ${S}.gl (id bigint primary key, tenant_id uuid, tt_id bigint, foreign key (tenant_id, tt_id) references ${S}.tt (tenant_id, id))`,
    ],
    tenant: ['tt'],
    global: ['gl'],
    before: [`select create_distributed_table('${S}.tt', 'tenant_id')`],
    findings: [`CITUS_GLOBAL_TABLE_REFERENCES_TENANT ${S}.gl`],
    attempt: `select create_reference_table('${S}.gl')`,
    refusal: /not supported|foreign key/i,
  },
  {
    name: 'a tenant table without a primary key (logical shard moves)',
    ddl: [`create table ${S}.nopk (tenant_id uuid not null, body text)`],
    tenant: ['nopk'],
    before: [`select create_distributed_table('${S}.nopk', 'tenant_id')`],
    findings: [`CITUS_NO_PRIMARY_KEY ${S}.nopk`],
    // the default transfer mode (auto): logical replication
    attempt: `select citus_move_shard_placement(s.shardid, s.nodename, s.nodeport, o.nodename, o.nodeport)
                from (select shardid, nodename, nodeport from citus_shards where table_name = '${S}.nopk'::regclass order by shardid limit 1) s
                cross join lateral (select nodename, nodeport from pg_dist_node where groupid <> 0 and isactive and (nodename, nodeport) <> (s.nodename, s.nodeport) limit 1) o`,
    refusal: /doesn't have a REPLICA IDENTITY or PRIMARY KEY/i,
  },
];

describe.skipIf(!CITUS_URL)(
  CITUS_URL
    ? 'doctor --citus against Citus refusals'
    : 'doctor --citus against Citus refusals (skipped: CITUS_URL is not set)',
  () => {
    let admin: pg.Client;
    // the findings about Citus (the doctor's other findings, e.g. an unindexed foreign key, are
    // not about Citus and not asserted here)
    const CITUS_CODES = /^(CITUS_|PRIMARY_KEY_WITHOUT_TENANT|UNIQUE_WITHOUT_TENANT|FOREIGN_KEY_WITHOUT_TENANT)/;
    const ofSchema = (findings: { code: string; object: string }[]) =>
      findings
        .filter((f) => f.object.includes(`${S}.`) && CITUS_CODES.test(f.code))
        .map((f) => `${f.code} ${/citus_doc\.[a-z0-9_]+/.exec(f.object)![0]}`)
        .sort();

    beforeAll(async () => {
      await install(CITUS_URL!, { citus: true, contextSecret: CITUS_SECRET });
      admin = new pg.Client({ connectionString: CITUS_URL });
      await admin.connect();
    });

    afterAll(async () => {
      await admin?.query(`drop schema if exists ${S} cascade`);
      await admin?.end();
    });

    for (const c of CASES)
      it(`${c.name}: the doctor reports exactly it, and Citus refuses it`, async () => {
        await admin.query(`drop schema if exists ${S} cascade`);
        await admin.query(`create schema ${S}`);
        for (const sql of c.ddl) await admin.query(sql);
        for (const t of c.tenant ?? []) {
          await admin.query(`select tenantry.register_tenant_table('${S}.${t}')`);
          await admin.query(`select tenantry.citus_policies('${S}.${t}')`);
        }
        for (const t of c.global ?? []) await admin.query(`select tenantry.register_global_table('${S}.${t}')`);
        for (const sql of c.before ?? []) await admin.query(sql);
        const report = await runDoctor(CITUS_URL!, { citus: true, schemas: ['public', S] });
        expect(ofSchema(report.findings)).toEqual(c.findings);
        const refused = await admin.query(c.attempt).then(
          () => 'accepted',
          (e: Error) => e.message,
        );
        expect(refused).not.toBe('accepted');
        expect(refused).toMatch(c.refusal);
        // never Citus's own objects
        expect(report.findings.filter((f) => /citus_(tables|schemas|shards|stat|dist|lock)/.test(f.object))).toEqual(
          [],
        );
      });

    it('a clean schema: no finding, and Citus distributes it', async () => {
      await admin.query(`drop schema if exists ${S} cascade`);
      await admin.query(`create schema ${S}`);
      await admin.query(
        `create table ${S}.ok (tenant_id uuid not null, id bigint, body text, primary key (tenant_id, id))`,
      );
      await admin.query(`set role tenantry_owner`).catch(() => undefined);
      await admin.query(`reset role`);
      await admin.query(`select tenantry.register_tenant_table('${S}.ok')`);
      await admin.query(`select tenantry.citus_policies('${S}.ok')`);
      const report = await runDoctor(CITUS_URL!, { citus: true, schemas: ['public', S] });
      expect(ofSchema(report.findings)).toEqual([]);
      await admin.query(`select create_distributed_table('${S}.ok', 'tenant_id')`);
    });
  },
);
