// The reference server on Citus (TENANTRY_CITUS=1, docs/citus.md "The reference server on
// Citus"): `app/main.ts` started as a child process, as `npm start` runs it, with DATABASE_URL
// naming a fresh database of the cluster (citus and the workers added). It installs with
// --citus, migrates, distributes the tables and seeds the demo; then, over HTTP, acme's list,
// read, update and delete of globex's recordings are refused (404) and nothing of globex's
// changes (read back as globex), and the other way round for a recording acme writes. Runs when
// CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { signIn, startServer, tempProject, type ServerProcess } from '../fault/support/reference-server.js';
import { CITUS_SECRET, CITUS_URL } from './citus-support.js';

const DB = `app_server_${randomUUID().slice(0, 8)}`;
// roles are cluster-wide: the server's passwords are set on them first (the install refuses a
// start whose passwords are not the database's); the app role keeps the other Citus tests' one
const PASSWORDS = {
  tenantry_app: process.env.TENANTRY_CITUS_APP_PASSWORD ?? 'citus-server-app-password',
  tenantry_owner: 'citus-server-owner-password',
  tenantry_support: 'citus-server-support-password',
  tenantry_router: 'citus-server-router-password',
};

interface Recording {
  id: string;
  title: string;
  ownerId: string;
  durationSeconds: number;
  updatedAt: string;
}

async function http(
  url: string,
  token: string,
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

describe.skipIf(!CITUS_URL)(
  CITUS_URL
    ? 'the reference server on Citus (TENANTRY_CITUS=1)'
    : 'the reference server on Citus (TENANTRY_CITUS=1) (skipped: CITUS_URL is not set)',
  () => {
    let url: string;
    let admin: pg.Client;
    let server: ServerProcess | undefined;
    let project: Awaited<ReturnType<typeof tempProject>> | undefined;
    let workers: { nodename: string; nodeport: number }[] = [];

    const onNode = async (host: string, port: number, database: string, sql: string[]) => {
      const c = new pg.Client({ host, port, user: new URL(CITUS_URL!).username || 'postgres', database });
      await c.connect();
      try {
        for (const s of sql) await c.query(s);
      } finally {
        await c.end();
      }
    };

    beforeAll(async () => {
      const root = new pg.Client({ connectionString: CITUS_URL });
      await root.connect();
      workers = (
        await root.query<{ nodename: string; nodeport: number }>(
          `select nodename, nodeport from pg_dist_node where groupid <> 0 and isactive order by nodeport`,
        )
      ).rows;
      await root.query(`create database ${DB}`);
      // existing roles get the server's passwords (ALTER ROLE is propagated to the workers)
      for (const [role, password] of Object.entries(PASSWORDS))
        if ((await root.query(`select 1 from pg_roles where rolname = $1`, [role])).rowCount)
          await root.query(`alter role ${role} password '${password.replace(/'/g, "''")}'`);
      await root.end();
      for (const w of workers)
        await onNode(w.nodename, w.nodeport, 'postgres', [`create database ${DB}`]).then(() =>
          onNode(w.nodename, w.nodeport, DB, ['create extension citus']),
        );
      const u = new URL(CITUS_URL!);
      u.pathname = `/${DB}`;
      url = u.toString();
      admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query('create extension citus');
      await admin.query(`select citus_set_coordinator_host($1, $2)`, [u.hostname, Number(u.port || 5432)]);
      for (const w of workers) await admin.query(`select citus_add_node($1, $2)`, [w.nodename, w.nodeport]);
      project = await tempProject();
      server = await startServer({
        dir: project.dir,
        timeoutMs: 240_000,
        env: {
          DATABASE_URL: url,
          TENANTRY_CITUS: '1',
          TENANTRY_CONTEXT_SECRET: CITUS_SECRET,
          TENANTRY_APP_PASSWORD: PASSWORDS.tenantry_app,
          TENANTRY_OWNER_PASSWORD: PASSWORDS.tenantry_owner,
          TENANTRY_SUPPORT_PASSWORD: PASSWORDS.tenantry_support,
          TENANTRY_ROUTER_PASSWORD: PASSWORDS.tenantry_router,
        },
      });
    }, 300_000);

    afterAll(async () => {
      // CITUS_SERVER_LOG=<file>: what the server printed, for reading after the run
      if (server && process.env.CITUS_SERVER_LOG) await writeFile(process.env.CITUS_SERVER_LOG, server.output());
      if (server && server.child.exitCode === null) {
        server.child.kill('SIGTERM');
        const stopped = await Promise.race([server.exited, sleep(30_000).then(() => undefined)]);
        if (!stopped) server.child.kill('SIGKILL');
      }
      await admin?.end();
      await project?.remove();
      const root = new pg.Client({ connectionString: CITUS_URL });
      await root.connect();
      await root.query(`drop database if exists ${DB} with (force)`).catch(() => undefined);
      await root.end();
      for (const w of workers)
        await onNode(w.nodename, w.nodeport, 'postgres', [`drop database if exists ${DB} with (force)`]).catch(
          () => undefined,
        );
    }, 90_000);

    it('starts on the coordinator: tables distributed, the banner says what is off', async () => {
      const out = server!.output();
      expect(out).toContain(
        `citus      TENANTRY_CITUS=1: the tables distributed by tenant_id over ${workers.length} workers`,
      );
      expect(out).toContain('off in this mode: schema/database tiers');
      const { rows } = await admin.query<{ t: string; partmethod: string }>(
        `select logicalrelid::text as t, partmethod from pg_dist_partition
          where logicalrelid::text in ('app_private.users', 'members', 'recordings', 'tenant_event_streams', 'tenant_events')
          order by 1`,
      );
      expect(rows.map((r) => `${r.t} ${r.partmethod}`)).toEqual([
        'app_private.users n',
        'members h',
        'recordings h',
        'tenant_event_streams h',
        'tenant_events h',
      ]);
      // the demo tenants are in the shared, distributed tables (no placements)
      const placed = await admin.query(`select 1 from tenantry.placements where tier <> 'shared'`);
      expect(placed.rowCount).toBe(0);
    });

    it("acme's list, read, update and delete of globex's recordings are refused (404); globex's stay as they were", async () => {
      const base = server!.url;
      const acme = await signIn(base, 'alice@acme.example', 'acme');
      const globex = await signIn(base, 'grace@globex.example', 'globex');
      const globexList = await http(`${base}/recordings?limit=100`, globex, 'GET');
      expect(globexList.status).toBe(200);
      const theirs = (globexList.body as { items: Recording[] }).items;
      expect(theirs.length).toBeGreaterThan(0);
      const acmeList = await http(`${base}/recordings?limit=100`, acme, 'GET');
      expect(acmeList.status).toBe(200);
      const acmeIds = (acmeList.body as { items: Recording[] }).items.map((r) => r.id);
      expect(acmeIds.length).toBeGreaterThan(0);
      for (const r of theirs) expect(acmeIds).not.toContain(r.id);

      for (const r of theirs) {
        expect((await http(`${base}/recordings/${r.id}`, acme, 'GET')).status).toBe(404);
        expect((await http(`${base}/recordings/${r.id}`, acme, 'PATCH', { title: 'taken by acme' })).status).toBe(404);
        expect((await http(`${base}/recordings/${r.id}`, acme, 'DELETE')).status).toBe(404);
      }
      // read back as the owner: every one there, unchanged
      for (const r of theirs) {
        const mine = await http(`${base}/recordings/${r.id}`, globex, 'GET');
        expect(mine.status).toBe(200);
        expect(mine.body).toEqual(r);
      }
      expect((await http(`${base}/recordings?limit=100`, globex, 'GET')).body).toEqual(globexList.body);
    });

    it("a recording acme writes is acme's alone; its live event is published by the app (the row trigger is gone)", async () => {
      const base = server!.url;
      const acme = await signIn(base, 'alice@acme.example', 'acme');
      const globex = await signIn(base, 'grace@globex.example', 'globex');
      const created = await http(`${base}/recordings`, acme, 'POST', {
        title: 'On Citus',
        durationSeconds: 42,
        mimeType: 'audio/ogg',
      });
      // on a failure, the server's log lines say why
      const logLines = () =>
        server!
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{"level"'))
          .join('\n');
      expect(created.status, logLines()).toBe(201);
      const rec = created.body as Recording;
      expect((await http(`${base}/recordings/${rec.id}`, globex, 'GET')).status).toBe(404);
      expect((await http(`${base}/recordings/${rec.id}`, globex, 'PATCH', { title: 'taken by globex' })).status).toBe(
        404,
      );
      expect((await http(`${base}/recordings/${rec.id}`, globex, 'DELETE')).status).toBe(404);
      const globexIds = ((await http(`${base}/recordings?limit=100`, globex, 'GET')).body as { items: Recording[] })
        .items;
      expect(globexIds.map((r) => r.id)).not.toContain(rec.id);
      const back = await http(`${base}/recordings/${rec.id}`, acme, 'GET');
      expect(back.status).toBe(200);
      expect(back.body).toEqual(rec);
      // the background job (recording.process, through the same Citus pool) processes it and
      // publishes recording.processed (bounded wait)
      const processed = async () =>
        (
          await admin.query(`select 1 from tenant_events where topic = 'recording.processed' and payload->>'id' = $1`, [
            rec.id,
          ])
        ).rowCount !== 0;
      for (let i = 0; i < 120 && !(await processed()); i++) await sleep(250);
      expect(await processed(), logLines()).toBe(true);
      // acme's own update and delete go through, as acme
      const patched = await http(`${base}/recordings/${rec.id}`, acme, 'PATCH', { title: 'On Citus, renamed' });
      expect(patched.status).toBe(200);
      expect((patched.body as Recording).title).toBe('On Citus, renamed');
      expect((await http(`${base}/recordings/${rec.id}`, acme, 'DELETE')).status).toBe(204);
      expect((await http(`${base}/recordings/${rec.id}`, acme, 'GET')).status).toBe(404);
      const trig = await admin.query(
        `select tgname from pg_trigger where tgrelid = 'public.recordings'::regclass and not tgisinternal`,
      );
      expect(trig.rows).toEqual([]);
      const events = await admin.query<{ topic: string }>(
        `select e.topic from tenant_events e join tenantry.tenants t on t.id = e.tenant_id
          where t.slug = 'acme' and e.payload->>'id' = $1 order by e.seq`,
        [rec.id],
      );
      const topics = events.rows.map((r) => r.topic);
      expect(topics).toContain('recording.created');
      expect(topics).toContain('recording.updated');
      expect(topics.at(-1)).toBe('recording.deleted');
    });
  },
);
