import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { z } from 'zod';
import { StaffAccess, type Placements, type Queryable } from 'tenantry';
import { exportTenant, type PurgeParticipant } from 'tenantry/lifecycle';
import type { TenantRateLimits } from 'tenantry/limits';
import { ApiError } from '../http/api-error.js';
import { parseInput, text, uuid } from '../http/validation.js';
import type { ConsoleAudit } from './console-audit.js';
import { requireCsrf } from './console-session.js';
import { consoleTenant, recordConsoleReason } from './console-tenant.js';

/** What the console needs to export tenants (the library's exportTenant, docs/export-import.md). */
export interface ConsoleExports {
  /** The home database (the catalog) as the owner role. */
  catalog: pg.Pool;
  /** Owner pools per location: the tenant is read wherever it lives. */
  placements: Placements;
  /**
   * This server's own folder for archives (e.g. `.tenantry/console-exports`): at start every
   * archive in it is removed (none is known to a server that just started). Without it, archives
   * go to the shared `tenantry-console-exports` folder of the OS's temporary directory (mode
   * 0700), where a start removes only those older than `keepMs` + `timeoutMs` (another server may
   * be using the others).
   */
  dir?: string;
  /** How long an export may run before it is given up (default 10 minutes). */
  timeoutMs?: number;
  /** How long a finished archive stays downloadable (default one hour); then it is deleted. */
  keepMs?: number;
  /**
   * The tenant rate limits: an export costs one point of the `limit` limit when it is configured.
   * Not the tenant's own `export` limit: staff must not use up the tenant's quota.
   */
  limits?: Pick<TenantRateLimits, 'consume' | 'config'>;
  /** The limit console exports count against (default `console-export`). */
  limit?: string;
}

type ExportState =
  | { state: 'running'; startedAt: Date }
  | { state: 'ready'; startedAt: Date; finishedAt: Date; bytes: number; tables: number; rows: number }
  | { state: 'failed'; startedAt: Date; code: string; message: string };

interface ExportRun {
  id: string;
  tenantId: string;
  slug: string;
  staffId: string;
  file: string;
  status: ExportState;
}

/** The shared folder of archives when no `dir` is given. */
export const SHARED_CONSOLE_EXPORT_DIR = path.join(tmpdir(), 'tenantry-console-exports');

// `<tenant id>.<random>.tenant`: the tenant's archives are found by name (a purge removes them)
const ARCHIVE = /^([0-9a-f-]{36})\.[0-9a-f-]{36}\.tenant$/;
// what exportTenant writes next to the archive before renaming it (left behind by a kill -9)
const WORK = /^\.tenantry-export-/;

async function entriesOf(dir: string): Promise<Array<{ file: string; tenantId: string | null }>> {
  const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [] as string[];
    throw error;
  });
  return names.flatMap((name): Array<{ file: string; tenantId: string | null }> => {
    const m = ARCHIVE.exec(name);
    if (m) return [{ file: path.join(dir, name), tenantId: m[1]! }];
    return WORK.test(name) ? [{ file: path.join(dir, name), tenantId: null }] : [];
  });
}

/**
 * Removes the archives (and half-written exports) a stop or a crash (kill -9) left in `dir`:
 * every one older than `olderThanMs`, or all of them when `olderThanMs` is undefined. Returns how
 * many it removed.
 */
export async function sweepConsoleExports(dir: string, options: { olderThanMs?: number } = {}): Promise<number> {
  let removed = 0;
  for (const { file } of await entriesOf(dir)) {
    if (options.olderThanMs !== undefined) {
      const info = await stat(file).catch(() => undefined);
      if (!info || Date.now() - info.mtimeMs < options.olderThanMs) continue;
    }
    await rm(file, { recursive: true, force: true });
    removed++;
  }
  return removed;
}

/**
 * The console's archives of a tenant take part in its purge (docs/offboarding.md): the purge
 * counts and removes them, wherever the export was started from on this machine.
 */
export function consoleExportsPurgeParticipant(dir: string = SHARED_CONSOLE_EXPORT_DIR): PurgeParticipant {
  const ofTenant = async (tenantId: string) => (await entriesOf(dir)).filter((a) => a.tenantId === tenantId);
  return {
    name: 'console-exports',
    plan: async (tenantId) => (await ofTenant(tenantId)).length,
    purge: async (tenantId) => {
      const files = await ofTenant(tenantId);
      await Promise.all(files.map((a) => rm(a.file, { force: true })));
      return files.length;
    },
  };
}

const exportBody = z.object({ reason: text() }).strict();
const exportParams = z.object({ tenant: z.string(), exportId: uuid() }).strict();

/**
 * Exports from the console: start one with a reason (202; it runs in the background, bounded by
 * `timeoutMs`, one at a time per tenant, counted against the console's own `console-export` rate
 * limit when configured, never the tenant's `export` quota),
 * follow it, and download the signed archive. The download is a GET that needs the session cookie
 * AND the CSRF header (the page fetches it, then saves the blob), so no link on another site can
 * start it, and each download is recorded in the console's audit. This server's exports only: a
 * restart forgets them (their files are removed, at the close or, after a crash, at the next start).
 */
export function consoleExportRoutes(
  api: FastifyInstance,
  options: {
    catalogPool: Queryable;
    exports: ConsoleExports;
    staffAccess: StaffAccess;
    audit: ConsoleAudit;
    secret: string;
    onError: (error: unknown) => void;
  },
): void {
  const { exports, staffAccess } = options;
  const dir = exports.dir ?? SHARED_CONSOLE_EXPORT_DIR;
  const timeoutMs = exports.timeoutMs ?? 10 * 60_000;
  const keepMs = exports.keepMs ?? 60 * 60_000;
  const runs = new Map<string, ExportRun>();
  // what the last run left (killed: its archives stayed): gone before this server writes any
  const swept = sweepConsoleExports(dir, exports.dir ? {} : { olderThanMs: keepMs + timeoutMs }).then(
    () => undefined,
    (error: unknown) => options.onError(error),
  );

  // this server's archives go with it (a restart forgets them anyway)
  api.addHook('onClose', async () => {
    await Promise.all([...runs.values()].map((run) => rm(run.file, { force: true }).catch(options.onError)));
  });

  const forget = (run: ExportRun) => {
    runs.delete(run.id);
    void rm(run.file, { force: true }).catch(options.onError);
  };

  api.get('/console/api/tenants/:tenant/exports', async (request) => {
    const tenant = await consoleTenant(options.catalogPool, request);
    return {
      exports: [...runs.values()]
        .filter((r) => r.tenantId === tenant.id)
        .map((r) => ({ id: r.id, staffId: r.staffId, ...r.status }))
        .reverse(),
    };
  });

  api.post('/console/api/tenants/:tenant/exports', async (request, reply) => {
    const tenant = await consoleTenant(options.catalogPool, request);
    const { reason } = parseInput(exportBody, request.body, 'body');
    const checked = StaffAccess.checkReason(reason);
    if (tenant.status === 'deleted')
      throw new ApiError(409, 'TENANT_DELETED', 'A deleted tenant is exported with the CLI (tenantry tenants export)');
    if ([...runs.values()].some((r) => r.tenantId === tenant.id && r.status.state === 'running'))
      throw new ApiError(409, 'EXPORT_IN_PROGRESS', 'An export of this tenant is running');
    // the console's own budget per tenant (not the tenant's `export` quota)
    const limit = exports.limit ?? 'console-export';
    if (exports.limits?.config.limits.has(limit)) await exports.limits.consume(tenant.id, limit);
    const staff = request.consoleStaff!;
    await recordConsoleReason(staffAccess, { sessionId: staff.sessionId, tenantId: tenant.id }, 'export', checked);
    await swept;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700); // a tenant's full data: this user's only, even in a folder made before
    const run: ExportRun = {
      id: randomUUID(),
      tenantId: tenant.id,
      slug: tenant.slug,
      staffId: staff.userId,
      file: path.join(dir, `${tenant.id}.${randomUUID()}.tenant`),
      status: { state: 'running', startedAt: new Date() },
    };
    runs.set(run.id, run);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new ApiError(504, 'EXPORT_TIMEOUT', `The export took longer than ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    const work = exportTenant({
      catalog: exports.catalog,
      placements: exports.placements,
      tenant: tenant.id,
      out: run.file,
    });
    void Promise.race([work, timedOut])
      .then(
        async (result) => {
          const { size } = await stat(result.file);
          run.status = {
            state: 'ready',
            startedAt: run.status.startedAt,
            finishedAt: new Date(),
            bytes: size,
            tables: result.manifest.tables.length,
            rows: result.manifest.tables.reduce((sum, t) => sum + t.rows, 0),
          };
        },
        (error: { code?: unknown }) => {
          run.status = {
            state: 'failed',
            startedAt: run.status.startedAt,
            code: typeof error?.code === 'string' ? error.code : 'EXPORT_FAILED',
            message: 'The export did not finish; start another',
          };
          // a timed-out export still writing: its file is removed once it stops
          void work.then(
            () => rm(run.file, { force: true }),
            () => undefined,
          );
        },
      )
      .finally(() => {
        clearTimeout(timer);
        setTimeout(() => forget(run), keepMs).unref();
      })
      .catch(options.onError);
    return reply.code(202).send({ exportId: run.id, state: 'running' });
  });

  api.get('/console/api/tenants/:tenant/exports/:exportId/download', async (request, reply) => {
    const { exportId } = parseInput(exportParams, request.params, 'params');
    const staff = request.consoleStaff!;
    // a GET, but it hands out a tenant's data: the CSRF header as for a change, so only the
    // console's own page (which fetches it) can ask
    requireCsrf(request, options.secret, staff.sessionId);
    const tenant = await consoleTenant(options.catalogPool, request);
    const run = runs.get(exportId);
    if (!run || run.tenantId !== tenant.id) throw new ApiError(404, 'NOT_FOUND', 'No such export of this tenant');
    if (run.status.state !== 'ready') throw new ApiError(409, 'EXPORT_NOT_READY', `The export is ${run.status.state}`);
    await options.audit.record({
      staffId: staff.userId,
      action: 'export.download',
      tenantId: tenant.id,
      tenantSlug: tenant.slug,
      outcome: 'ok',
      detail: { exportId, bytes: run.status.bytes },
    });
    const name = `${run.slug}-${run.status.finishedAt.toISOString().replaceAll(':', '').slice(0, 15)}.tenant`;
    return reply
      .type('application/x-tar')
      .header('content-disposition', `attachment; filename="${name}"`)
      .header('cache-control', 'no-store')
      .send(createReadStream(run.file));
  });
}
