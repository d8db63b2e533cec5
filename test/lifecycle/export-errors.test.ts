import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, truncate, writeFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportTenant, importTenant, type ArchiveManifest } from '../../src/lifecycle/index.js';
import { rewriteArchive } from './support/archive-edit.js';
import { exportFixture, othersChecksum, seedTenant, type ExportFixture } from './support/export-fixture.js';

let f: ExportFixture;
let dir: string;
let archive: string;
let manifest: ArchiveManifest;
const HOME = { tier: 'shared' as const, cluster: 'home' };

beforeAll(async () => {
  f = await exportFixture();
  dir = await mkdtemp(path.join(os.tmpdir(), 'tenantry-export-errors-'));
  await seedTenant(f, 'acme', 200, 5);
  await seedTenant(f, 'other', 20, 2);
  archive = path.join(dir, 'acme.tenant');
  manifest = (await exportTenant({ catalog: f.db.owner, placements: f.placements, tenant: 'acme', out: archive }))
    .manifest;
});
afterAll(async () => {
  await f?.end();
  await rm(dir, { recursive: true, force: true });
});

/** The import fails with `code`, and nothing is visible or changed: no tenant, no rows, no route. */
async function refused(file: string, code: string, as = 'acme-new'): Promise<void> {
  const before = await othersChecksum(f, [], [HOME]);
  const routes = await f.db.owner.query('select tenant_key, state from tenantry.local_tenants order by 1');
  await expect(importTenant({ file, catalog: f.db.owner, placements: f.placements, as })).rejects.toMatchObject({
    code,
  });
  expect((await f.db.owner.query('select from tenantry.tenants where slug = $1', [as])).rowCount).toBe(0);
  expect(await othersChecksum(f, [], [HOME])).toBe(before);
  expect((await f.db.owner.query('select tenant_key, state from tenantry.local_tenants order by 1')).rows).toEqual(
    routes.rows,
  );
  // a failed import does not stay open in the journal: closed as failed, with its reason
  const journal = await f.db.owner.query<{ step: string; error: string | null }>(
    `select step, error from tenantry.tenant_imports where slug = $1 order by created_at`,
    [as],
  );
  expect(journal.rows.filter((r) => r.step === 'loading' || r.step === 'loaded')).toEqual([]);
  for (const r of journal.rows.filter((r) => r.step === 'failed')) expect(r.error).toMatch(/^[A-Z0-9_]+: /);
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('a bad archive is refused with a code, and nothing becomes visible', () => {
  it('no such file', async () => {
    await refused(path.join(dir, 'missing.tenant'), 'INVALID_ARGUMENT');
  });

  it('not an archive', async () => {
    const file = path.join(dir, 'garbage.tenant');
    await writeFile(file, Buffer.alloc(4096, 7));
    await refused(file, 'ARCHIVE_CORRUPT');
  });

  it('truncated inside a table', async () => {
    const file = path.join(dir, 'truncated.tenant');
    await copyFile(archive, file);
    await truncate(file, Math.floor((await stat(file)).size * 0.7));
    await refused(file, 'ARCHIVE_TRUNCATED');
  });

  it('truncated after a whole table (an entry missing)', async () => {
    const file = path.join(dir, 'short.tenant');
    // the file ends after projects: tasks and the library tables that follow it are gone
    let cut = false;
    await rewriteArchive(archive, file, (name, body) => {
      if (name.endsWith('tasks.copy.gz')) cut = true;
      return cut ? undefined : body;
    });
    await refused(file, 'ARCHIVE_TRUNCATED');
  });

  it('damaged bytes in a compressed table', async () => {
    const file = path.join(dir, 'damaged.tenant');
    await rewriteArchive(archive, file, (name, body) => {
      if (!name.endsWith('tasks.copy.gz')) return body;
      const b = Buffer.from(body);
      for (let i = 100; i < 160; i++) b[i] = b[i]! ^ 0xff;
      return b;
    });
    await refused(file, 'ARCHIVE_CORRUPT');
  });

  it('an unknown format version', async () => {
    const file = path.join(dir, 'v2.tenant');
    await rewriteArchive(
      archive,
      file,
      (name, body) => (name === 'manifest.json' ? Buffer.from(JSON.stringify({ ...manifest, version: 2 })) : body),
      f.db.owner,
    );
    await refused(file, 'ARCHIVE_VERSION_UNSUPPORTED');
  });

  it('an app migration version newer than the target', async () => {
    await f.db.owner.query(
      `insert into tenantry.schema_migrations (target, version, name, scope, checksum) values ('home/' || current_database(), 3, 'x', 'global', 'x')`,
    );
    const file = path.join(dir, 'newer.tenant');
    await rewriteArchive(
      archive,
      file,
      (name, body) =>
        name === 'manifest.json' ? Buffer.from(JSON.stringify({ ...manifest, appMigrationVersion: 7 })) : body,
      f.db.owner,
    );
    try {
      await refused(file, 'IMPORT_VERSION_MISMATCH');
    } finally {
      await f.db.owner.query('delete from tenantry.schema_migrations');
    }
  });

  it('a tampered table (a row edited, the manifest not)', async () => {
    const file = path.join(dir, 'tampered.tenant');
    await rewriteArchive(archive, file, (name, body) =>
      name.endsWith('projects.copy.gz')
        ? gzipSync(Buffer.from(gunzipSync(body).toString('utf8').replace('p1\\t', 'pX\\t')))
        : body,
    );
    await refused(file, 'ARCHIVE_TABLE_MISMATCH');
  });

  it('rows of another tenant, even with a manifest that matches them', async () => {
    const other = (await f.db.owner.query<{ id: string }>(`select id from tenantry.tenants where slug = 'other'`))
      .rows[0]!.id;
    const file = path.join(dir, 'foreign.tenant');
    let edited: Buffer | undefined;
    await rewriteArchive(archive, path.join(dir, 'foreign-step.tenant'), (name, body) => {
      if (!name.endsWith('tasks.copy.gz')) return body;
      const text = gunzipSync(body).toString('utf8');
      const lines = text.split('\n');
      lines[0] = lines[0]!.replace(manifest.tenant.id, other);
      edited = Buffer.from(lines.join('\n'));
      return gzipSync(edited);
    });
    const tasks = manifest.tables.find((t) => t.name === 'tasks')!;
    const fixed = {
      ...manifest,
      tables: manifest.tables.map((t) => (t === tasks ? { ...t, sha256: sha(edited!), bytes: edited!.length } : t)),
    };
    await rewriteArchive(
      path.join(dir, 'foreign-step.tenant'),
      file,
      (name, body) => (name === 'manifest.json' ? Buffer.from(JSON.stringify(fixed)) : body),
      f.db.owner,
    );
    await refused(file, 'ARCHIVE_TABLE_MISMATCH');
  });

  it('a manifest that is not JSON', async () => {
    const file = path.join(dir, 'nojson.tenant');
    await rewriteArchive(
      archive,
      file,
      (name, body) => (name === 'manifest.json' ? Buffer.from('{oops') : body),
      f.db.owner,
    );
    await refused(file, 'ARCHIVE_CORRUPT');
  });

  it('a target without the tables of the archive', async () => {
    const file = path.join(dir, 'unknown-table.tenant');
    await rewriteArchive(
      archive,
      file,
      (name, body) =>
        name === 'manifest.json'
          ? Buffer.from(
              JSON.stringify({
                ...manifest,
                tables: manifest.tables.map((t) => (t.name === 'tasks' ? { ...t, name: 'chores' } : t)),
              }),
            )
          : body,
      f.db.owner,
    );
    await refused(file, 'IMPORT_SCHEMA_MISMATCH');
  });

  it('a manifest edited without the key: the signature no longer matches', async () => {
    const file = path.join(dir, 'resigned-not.tenant');
    await rewriteArchive(archive, file, (name, body) =>
      name === 'manifest.json'
        ? Buffer.from(JSON.stringify({ ...manifest, tenant: { ...manifest.tenant, name: 'X' } }))
        : body,
    );
    await refused(file, 'ARCHIVE_SIGNATURE_INVALID');
    // and --allow-unsigned does not let an altered archive in
    await expect(
      importTenant({ file, catalog: f.db.owner, placements: f.placements, as: 'acme-new', allowUnsigned: true }),
    ).rejects.toMatchObject({ code: 'ARCHIVE_SIGNATURE_INVALID', details: { reason: 'mismatch' } });
  });

  it('an archive without its signature is refused, unless allowed', async () => {
    const file = path.join(dir, 'unsigned.tenant');
    await rewriteArchive(archive, file, (name, body) => (name === 'manifest.sig' ? undefined : body));
    await refused(file, 'ARCHIVE_UNSIGNED');
    const r = await importTenant({
      file,
      catalog: f.db.owner,
      placements: f.placements,
      as: 'acme-unsigned',
      allowUnsigned: true,
    });
    expect(r).toMatchObject({ signature: 'unsigned', tables: [{ rows: 2 }, { rows: 200 }, { rows: 1000 }] });
    const journal = await f.db.owner.query(`select step, signature from tenantry.tenant_imports where slug = $1`, [
      'acme-unsigned',
    ]);
    expect(journal.rows).toEqual([{ step: 'done', signature: 'unsigned' }]);
  });

  it("an archive signed by another deployment's key is refused, unless allowed", async () => {
    const file = path.join(dir, 'foreign-key.tenant');
    const sig = 'hmac-sha256:1:0123456789abcdef:' + 'ab'.repeat(32);
    await rewriteArchive(archive, file, (name, body) => (name === 'manifest.sig' ? Buffer.from(sig) : body));
    await refused(file, 'ARCHIVE_SIGNATURE_INVALID');
    const malformed = path.join(dir, 'malformed-sig.tenant');
    await rewriteArchive(archive, malformed, (name, body) => (name === 'manifest.sig' ? Buffer.from('nope') : body));
    await refused(malformed, 'ARCHIVE_SIGNATURE_INVALID');
  });

  it('a failed import is closed as failed with its reason, and a re-run loads it', async () => {
    // fails after the journal opened it: a table's bytes differ from the manifest
    const file = path.join(dir, 'tampered-again.tenant');
    await rewriteArchive(archive, file, (name, body) =>
      name.endsWith('tasks.copy.gz')
        ? gzipSync(Buffer.from(gunzipSync(body).toString('utf8').replace('\t', '\t ')))
        : body,
    );
    await refused(file, 'ARCHIVE_TABLE_MISMATCH', 'acme-fail');
    const r = await importTenant({ file: archive, catalog: f.db.owner, placements: f.placements, as: 'acme-fail' });
    expect(r.signature).toBe('verified');
    const journal = await f.db.owner.query<{ step: string; error: string | null }>(
      `select step, error from tenantry.tenant_imports where slug = 'acme-fail' order by created_at`,
    );
    expect(journal.rows.map((x) => x.step)).toEqual(['failed', 'done']);
    expect(journal.rows[0]!.error).toMatch(/^ARCHIVE_TABLE_MISMATCH: /);
    expect(journal.rows[1]!.error).toBeNull();
  });

  it('the good archive still imports afterwards', async () => {
    const r = await importTenant({ file: archive, catalog: f.db.owner, placements: f.placements, as: 'acme-new' });
    expect(r.tables.map((t) => t.rows)).toEqual([2, 200, 1000]);
    expect(await readFile(archive)).toBeTruthy();
  });
});
