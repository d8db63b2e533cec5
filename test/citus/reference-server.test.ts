// The reference server on Citus (TENANTRY_CITUS=1, docs/citus.md "The reference server on
// Citus"): `app/main.ts` started as a child process, as `npm start` runs it, with DATABASE_URL
// naming a fresh database of the cluster (citus and the workers added). It installs with
// --citus (and the support role), migrates, distributes the tables and seeds the demo; then, over
// HTTP, acme's list, read, update and delete of globex's recordings are refused (404) and nothing
// of globex's changes (read back as globex), and the other way round for a recording acme
// writes; the other tenant routes (members, invitations, API keys, domains, settings, audit log)
// the same way. A second start on the same database (a restart) is clean and leaves the
// distributed tables' policies alone; a start whose secrets are not the database's is refused
// before it changes anything. Runs when CITUS_URL is set.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { signIn, startServer, tempProject, type ServerProcess } from '../fault/support/reference-server.js';
import { createCitusDatabase, CITUS_SECRET, CITUS_URL, type CitusTestDatabase } from './citus-support.js';
import { SseClient } from '../live/support/sse-client.js';
import { runDoctor } from '../../src/policy/doctor.js';

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
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE',
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
    let cluster: CitusTestDatabase | undefined;
    let workers: { nodename: string; nodeport: number }[] = [];
    const ENV = () => ({
      DATABASE_URL: url,
      TENANTRY_CITUS: '1',
      TENANTRY_CONTEXT_SECRET: CITUS_SECRET,
      TENANTRY_APP_PASSWORD: PASSWORDS.tenantry_app,
      TENANTRY_OWNER_PASSWORD: PASSWORDS.tenantry_owner,
      TENANTRY_SUPPORT_PASSWORD: PASSWORDS.tenantry_support,
      TENANTRY_ROUTER_PASSWORD: PASSWORDS.tenantry_router,
    });
    const stop = async (s: ServerProcess) => {
      if (s.child.exitCode !== null) return;
      s.child.kill('SIGTERM');
      const stopped = await Promise.race([s.exited, sleep(30_000).then(() => undefined)]);
      if (!stopped) s.child.kill('SIGKILL');
    };
    // on a failure, the server's log lines say why
    const logLines = () =>
      server!
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{"level"'))
        .join('\n');

    beforeAll(async () => {
      // existing roles get the server's passwords (ALTER ROLE is propagated to the workers)
      const root = new pg.Client({ connectionString: CITUS_URL });
      await root.connect();
      for (const [role, password] of Object.entries(PASSWORDS))
        if ((await root.query(`select 1 from pg_roles where rolname = $1`, [role])).rowCount)
          await root.query(`alter role ${role} password '${password.replace(/'/g, "''")}'`);
      await root.end();
      cluster = await createCitusDatabase('app_server');
      ({ url, admin, workers } = cluster);
      project = await tempProject();
      server = await startServer({ dir: project.dir, timeoutMs: 240_000, env: ENV() });
    }, 300_000);

    afterAll(async () => {
      // CITUS_SERVER_LOG=<file>: what the server printed, for reading after the run
      if (server && process.env.CITUS_SERVER_LOG) await writeFile(process.env.CITUS_SERVER_LOG, server.output());
      if (server) await stop(server);
      await project?.remove();
      await cluster?.drop();
    }, 90_000);

    it('starts on the coordinator: tables distributed, the banner says what is off', async () => {
      const out = server!.output();
      expect(out).toContain(
        `citus      TENANTRY_CITUS=1: the tables distributed by tenant_id over ${workers.length} workers`,
      );
      expect(out).toContain('off in this mode: schema/database tiers');
      const { rows } = await admin.query<{ t: string; partmethod: string }>(
        `select logicalrelid::text as t, partmethod from pg_dist_partition
          where logicalrelid::text in ('app_private.users', 'members', 'recordings', 'tenant_event_streams', 'tenant_events',
                                       'transcripts', 'webhook_deliveries', 'webhook_endpoints', 'webhook_secrets')
          order by 1`,
      );
      expect(rows.map((r) => `${r.t} ${r.partmethod}`)).toEqual([
        'app_private.users n',
        'members h',
        'recordings h',
        'tenant_event_streams h',
        'tenant_events h',
        // the plugins' tables (app/plugins), colocated with the app's
        'transcripts h',
        'webhook_deliveries h',
        'webhook_endpoints h',
        'webhook_secrets h',
      ]);
      const groups = await admin.query<{ n: number }>(
        `select count(distinct colocationid)::int as n from pg_dist_partition where partmethod = 'h'`,
      );
      expect(groups.rows).toEqual([{ n: 1 }]);
      // the demo tenants are in the shared, distributed tables (no placements)
      const placed = await admin.query(`select 1 from tenantry.placements where tier <> 'shared'`);
      expect(placed.rowCount).toBe(0);
    });

    it('its own doctor --citus is clean: the plugin tables are distributed like the app tables', async () => {
      // before: CITUS_POLICY_SUBQUERY on transcripts and webhook_* (coordinator-only, InitPlan policy)
      const report = await runDoctor(url, { citus: true });
      const citusFindings = report.findings.filter((f) => f.code.startsWith('CITUS_'));
      expect(citusFindings.map((f) => `${f.code} ${f.object}`)).toEqual([]);
      expect(report.findings.filter((f) => f.severity === 'error').map((f) => `${f.code} ${f.object}`)).toEqual([]);
    });

    it("GET /events opens a tenant's stream on its first use (no stream row yet), and streams that tenant's events only", async () => {
      // before: 500 "subqueries are not supported within INSERT queries" (the stream row's insert)
      const base = server!.url;
      const streamRow = async (slug: string) =>
        (
          await admin.query(
            `select 1 from tenant_event_streams s join tenantry.tenants t on t.id = s.tenant_id where t.slug = $1`,
            [slug],
          )
        ).rowCount;
      expect(await streamRow('globex')).toBe(0);
      const acme = await signIn(base, 'alice@acme.example', 'acme');
      const globex = await signIn(base, 'grace@globex.example', 'globex');
      const globexStream = new SseClient(base, { token: globex });
      const acmeStream = new SseClient(base, { token: acme });
      try {
        await Promise.all([globexStream.response, acmeStream.response]);
        expect(globexStream.status, logLines()).toBe(200);
        expect(globexStream.headers['content-type']).toBe('text/event-stream; charset=utf-8');
        expect(acmeStream.status, logLines()).toBe(200);
        expect(await streamRow('globex')).toBe(1);
        const created = await http(`${base}/recordings`, globex, 'POST', {
          title: 'Streamed on Citus',
          durationSeconds: 7,
          mimeType: 'audio/ogg',
        });
        expect(created.status, logLines()).toBe(201);
        const id = (created.body as Recording).id;
        const mine = () => globexStream.events.some((e) => e.event === 'recording.created' && e.data.data.id === id);
        await Promise.race([globexStream.until(mine), sleep(20_000)]);
        expect(mine(), globexStream.body).toBe(true);
        // acme's stream, open all along, got nothing of globex's (an event of acme's own, sent
        // after, marks that acme's stream has caught up)
        const own = await http(`${base}/recordings`, acme, 'POST', {
          title: 'Marker on Citus',
          durationSeconds: 1,
          mimeType: 'audio/ogg',
        });
        expect(own.status).toBe(201);
        const ownId = (own.body as Recording).id;
        const marker = () => acmeStream.events.some((e) => e.data.data.id === ownId);
        await Promise.race([acmeStream.until(marker), sleep(20_000)]);
        expect(marker(), acmeStream.body).toBe(true);
        expect(acmeStream.body).not.toContain(id);
        expect(acmeStream.body).not.toContain('Streamed on Citus');
        expect((await http(`${base}/recordings/${ownId}`, acme, 'DELETE')).status).toBe(204);
        expect((await http(`${base}/recordings/${id}`, globex, 'DELETE')).status).toBe(204);
      } finally {
        globexStream.close();
        acmeStream.close();
      }
    });

    it('a support read (staff with a read grant) is refused with 501 NOT_ON_CITUS, never a 500; nothing is read', async () => {
      // before: 500, 42P01 relation "tenantry_private.staff_grants" does not exist (on the workers)
      const base = server!.url;
      const signedIn = await fetch(`${base}/staff/sign-in`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'staff@tenantry.example', password: 'tenantry-demo' }),
        signal: AbortSignal.timeout(15_000),
      });
      expect(signedIn.status).toBe(200);
      const staff = ((await signedIn.json()) as { token: string }).token;
      const grant = await http(`${base}/staff/access`, staff, 'POST', {
        tenant: 'globex',
        access: 'read',
        reason: 'ticket 18: support read on Citus',
      });
      expect(grant.status, JSON.stringify(grant.body)).toBe(201);
      const summary = await http(`${base}/staff/tenants/globex/summary`, staff, 'POST', {
        reason: 'ticket 18: support read on Citus',
      });
      expect(summary.status, logLines()).toBe(501);
      expect((summary.body as { error: { code: string; message: string } }).error.code).toBe('NOT_ON_CITUS');
      expect(JSON.stringify(summary.body)).not.toMatch(/recordings"?\s*:\s*\d|members"?\s*:\s*\d/);
      // bad input is still a 400, not the 501
      expect((await http(`${base}/staff/tenants/globex/summary`, staff, 'POST', {})).status).toBe(400);
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
    it("the sample plugins write on Citus: acme's transcript segments, globex's webhook endpoint and secret; neither reaches the other's", async () => {
      const base = server!.url;
      const acme = await signIn(base, 'alice@acme.example', 'acme');
      const globex = await signIn(base, 'grace@globex.example', 'globex');
      const rec = (await http(`${base}/recordings?limit=1`, acme, 'GET')).body as { items: Recording[] };
      const id = rec.items[0]!.id;
      const first = await http(`${base}/recordings/${id}/transcript`, acme, 'POST', { text: 'hello' });
      expect(first.status, logLines()).toBe(201);
      const second = await http(`${base}/recordings/${id}/transcript`, acme, 'POST', { text: 'again' });
      expect(second.status, logLines()).toBe(201);
      const read = (await http(`${base}/recordings/${id}/transcript`, acme, 'GET')).body as {
        segments: { text: string; position: number }[];
      };
      expect(read.segments.filter((s) => s.text === 'hello' || s.text === 'again').map((s) => s.text)).toEqual([
        'hello',
        'again',
      ]);
      // globex has no transcripts plugin and no access to acme's recording either way
      expect((await http(`${base}/recordings/${id}/transcript`, globex, 'POST', { text: 'x' })).status).toBe(404);
      const endpoint = await http(`${base}/webhooks/endpoints`, globex, 'POST', {
        url: 'https://example.com/hook',
        events: ['recording.created'],
      });
      expect(endpoint.status, logLines()).toBe(201);
      expect((await http(`${base}/webhooks/endpoints`, globex, 'GET')).status).toBe(200);
      expect((await http(`${base}/webhooks/endpoints`, acme, 'GET')).status).toBe(404);
      const stored = await admin.query<{ slug: string }>(
        `select t.slug from webhook_endpoints w join tenantry.tenants t on t.id = w.tenant_id where w.url = 'https://example.com/hook'`,
      );
      expect(stored.rows.map((r) => r.slug)).toEqual(['globex']);
    });

    it("the other tenant routes: members, invitations, API keys, domains, settings, audit log are each tenant's own; globex's writes to acme's are refused and nothing of acme's changes", async () => {
      const base = server!.url;
      const acme = await signIn(base, 'alice@acme.example', 'acme');
      const globex = await signIn(base, 'grace@globex.example', 'globex');
      const ok = async (res: Promise<{ status: number; body: unknown }>, status = 200) => {
        const r = await res;
        expect(r.status, `${JSON.stringify(r.body)}\n${logLines()}`).toBe(status);
        return r.body as Record<string, unknown>;
      };
      const items = async (token: string, route: string) =>
        ((await ok(http(`${base}${route}`, token, 'GET'))).items as Record<string, unknown>[]) ?? [];

      // acme writes: an invitation, an API key, a domain, a setting
      await ok(http(`${base}/invitations`, acme, 'POST', { email: 'new-on-citus@acme.example', role: 'member' }), 201);
      const key = await ok(http(`${base}/api-keys`, acme, 'POST', { name: 'citus key' }), 201);
      await ok(http(`${base}/domains`, acme, 'POST', { domain: 'citus.acme-example.com' }), 201);
      await ok(http(`${base}/settings/welcomeMessage`, acme, 'PUT', { value: 'Hello from Citus' }));

      // what acme has, read as acme
      const acmeState = async () => ({
        members: await items(acme, '/members'),
        invitations: (await items(acme, '/invitations')).map((i) => i.email),
        keys: (await items(acme, '/api-keys')).map((k) => `${String(k.id)} ${String(k.name)} ${String(k.revokedAt)}`),
        domains: (await items(acme, '/domains')).map((d) => d.domain),
        welcome: ((await ok(http(`${base}/settings`, acme, 'GET'))).settings as Record<string, unknown>).welcomeMessage,
      });
      const before = await acmeState();
      // (sam the consultant is a member of both)
      expect(before.members.map((m) => m.email).sort()).toEqual([
        'alice@acme.example',
        'bob@acme.example',
        'sam@consultant.example',
      ]);
      expect(before.invitations).toContain('new-on-citus@acme.example');
      expect(before.keys).toContain(`${String(key.id)} citus key null`);
      expect(before.domains).toContain('citus.acme-example.com');
      expect(before.welcome).toBe('Hello from Citus');

      // globex sees none of it
      const globexMembers = await items(globex, '/members');
      expect(globexMembers.map((m) => m.email).sort()).toEqual(['grace@globex.example', 'sam@consultant.example']);
      expect((await items(globex, '/invitations')).map((i) => i.email)).not.toContain('new-on-citus@acme.example');
      expect((await items(globex, '/api-keys')).map((k) => k.id)).not.toContain(key.id);
      expect((await items(globex, '/domains')).map((d) => d.domain)).not.toContain('citus.acme-example.com');
      const globexSettings = (await ok(http(`${base}/settings`, globex, 'GET'))).settings as Record<string, unknown>;
      expect(globexSettings.welcomeMessage).not.toBe('Hello from Citus');
      const globexAudit = JSON.stringify(await items(globex, '/audit-log?limit=100'));
      expect(globexAudit).not.toContain('citus key');
      expect(globexAudit).not.toContain('new-on-citus@acme.example');
      expect(globexAudit).not.toContain('citus.acme-example.com');

      // globex's writes to acme's: refused (404), acme's unchanged
      const bob = before.members.find((m) => m.email === 'bob@acme.example')!.userId as string;
      expect((await http(`${base}/members/${bob}`, globex, 'PATCH', { role: 'admin' })).status).toBe(404);
      expect((await http(`${base}/members/${bob}`, globex, 'DELETE')).status).toBe(404);
      expect((await http(`${base}/api-keys/${String(key.id)}`, globex, 'DELETE')).status).toBe(404);
      expect((await http(`${base}/domains/citus.acme-example.com`, globex, 'DELETE')).status).toBe(404);
      expect(await acmeState()).toEqual(before);

      // and acme's own: its key revoked, its domain removed, as acme
      expect((await http(`${base}/api-keys/${String(key.id)}`, acme, 'DELETE')).status).toBe(204);
      expect((await http(`${base}/domains/citus.acme-example.com`, acme, 'DELETE')).status).toBe(204);
      expect((await items(acme, '/domains')).map((d) => d.domain)).not.toContain('citus.acme-example.com');
      expect(await items(globex, '/members')).toEqual(globexMembers);
    });

    it('a second start on the same database (a restart) is clean: the policies of the distributed tables are left alone, the data is there', async () => {
      // before the fix: "XX000: unexpected non-SELECT command in SubLink" (the support-role step
      // of the install re-created the InitPlan policy on the distributed tables)
      const policies = async () =>
        (
          await admin.query(
            `select p.polrelid::regclass::text as t, p.polname, p.oid::text as oid from pg_policy p
               join pg_dist_partition d on d.logicalrelid = p.polrelid and d.partmethod = 'h' order by 1, 2`,
          )
        ).rows;
      const before = await policies();
      expect(before.map((p) => `${p.t} ${p.polname}`)).toContain('recordings tenantry_support_read');
      const globexBefore = await http(
        `${server!.url}/recordings?limit=100`,
        await signIn(server!.url, 'grace@globex.example', 'globex'),
        'GET',
      );
      await stop(server!);
      server = await startServer({ dir: project!.dir, timeoutMs: 240_000, env: ENV() });
      expect(server.output()).toContain(
        `citus      TENANTRY_CITUS=1: the tables distributed by tenant_id over ${workers.length} workers`,
      );
      expect(await policies()).toEqual(before);
      const globex = await signIn(server.url, 'grace@globex.example', 'globex');
      expect(await http(`${server.url}/recordings?limit=100`, globex, 'GET')).toEqual(globexBefore);
    }, 300_000);

    it("a start whose secrets are not the database's is refused before it changes anything, saying which and where from", async () => {
      // what an install changes on every run (the grants step re-creates the context functions)
      const state = async () =>
        (
          await admin.query(
            `select (select xmin::text from pg_proc where oid = 'tenantry.current_tenant_id()'::regprocedure) as fn,
                    (select array_agg(oid::text order by oid) from pg_policy) as policies,
                    (select array_agg(key || '=' || value order by key) from tenantry.meta) as meta`,
          )
        ).rows[0];
      const before = await state();
      const other = await tempProject();
      try {
        const refused = await startServer({
          dir: other.dir,
          timeoutMs: 120_000,
          env: {
            ...ENV(),
            TENANTRY_APP_PASSWORD: 'not-the-app-password-of-the-database',
            TENANTRY_CONTEXT_SECRET: 'not-the-context-secret-of-the-database-0123456789',
          },
        }).then(
          () => 'started',
          (e: Error) => e.message,
        );
        expect(refused).toContain(
          "Start failed: the password of tenantry_app and the context secret of this process are not the database's (nothing changed)",
        );
        expect(refused).toContain('Secrets used: TENANTRY_CONTEXT_SECRET, ');
        expect(refused).not.toContain('not-the-app-password-of-the-database');
        expect(refused).not.toContain('not-the-context-secret-of-the-database');
      } finally {
        await other.remove();
      }
      expect(await state()).toEqual(before);
      // the running server still serves
      const acme = await signIn(server!.url, 'alice@acme.example', 'acme');
      expect((await http(`${server!.url}/recordings?limit=1`, acme, 'GET')).status).toBe(200);
    }, 180_000);
    it('a start with no password given at all is refused saying so, not that its passwords are wrong', async () => {
      // before: "the password of tenantry_app and … of this process are not the database's … would
      // be refused (28P01)", though nothing was given (and the cluster authenticates by trust)
      const other = await tempProject();
      try {
        const refused = await startServer({
          dir: other.dir,
          timeoutMs: 120_000,
          env: {
            ...ENV(),
            TENANTRY_APP_PASSWORD: '',
            TENANTRY_OWNER_PASSWORD: '',
            TENANTRY_SUPPORT_PASSWORD: '',
            TENANTRY_ROUTER_PASSWORD: '',
          },
        }).then(
          () => 'started',
          (e: Error) => e.message,
        );
        expect(refused).toContain('Start failed: no password was given for tenantry_app, tenantry_owner');
        expect(refused).toContain('not set, no ');
        expect(refused).toContain(
          'on the server with passwords of their own: one made up for this start is not theirs (nothing changed)',
        );
        expect(refused).toContain('wherever the server checks passwords the app would be refused (28P01)');
        expect(refused).not.toContain("of this process are not the database's");
        expect(refused).not.toContain('TR001');
      } finally {
        await other.remove();
      }
      const acme = await signIn(server!.url, 'alice@acme.example', 'acme');
      expect((await http(`${server!.url}/recordings?limit=1`, acme, 'GET')).status).toBe(200);
    }, 180_000);
    it('a first start on a new database of the cluster without TENANTRY_CONTEXT_SECRET is refused before it stores a secret nobody knows', async () => {
      // the roles exist (cluster-wide): config.json is not written, so a context secret made up
      // for this start would be the database's key and lost after it
      const second = await createCitusDatabase('app_server_new');
      const other = await tempProject();
      try {
        const u = new URL(second.url);
        const refused = await startServer({
          dir: other.dir,
          timeoutMs: 120_000,
          env: { ...ENV(), DATABASE_URL: u.toString(), TENANTRY_CONTEXT_SECRET: '' },
        }).then(
          () => 'started',
          (e: Error) => e.message,
        );
        expect(refused).toContain(
          `Start failed: TENANTRY_CONTEXT_SECRET is not set and ${other.dir}/config.json was not written (the roles `,
        );
        expect(refused).toContain('(nothing changed)');
        const installed = await second.admin.query(`select to_regclass('tenantry.meta') is not null as meta`);
        expect(installed.rows).toEqual([{ meta: false }]);
      } finally {
        await other.remove();
        await second.drop();
      }
    }, 180_000);
  },
);
