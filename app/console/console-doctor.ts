import type { FastifyInstance } from 'fastify';
import { doctorEverywhere, type PlacementsAudit, type Queryable } from 'tenantry';

/** What the console's doctor needs: a URL per cluster (superuser or owner role) of its shared database. */
export interface ConsoleDoctor {
  clusters: Record<string, string>;
  /** A run that takes longer is reported `timed-out` (its result, if it ever comes, is dropped). Default 60 s. */
  timeoutMs?: number;
  /** The audit itself (default: the library's `doctorEverywhere` over the catalog); tests slow it down. */
  run?: (options: { catalog: Queryable; clusters: Record<string, string> }) => Promise<PlacementsAudit>;
}

type RunState = 'idle' | 'running' | 'done' | 'failed' | 'timed-out';

interface DoctorRun {
  state: RunState;
  startedAt: string | null;
  finishedAt: string | null;
  /** Why a run failed or stopped (never a URL or a password: those stay in the server's log). */
  error: string | null;
  audit: PlacementsAudit | null;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The doctor from the console (docs/doctor.md): `POST /console/api/doctor` starts an audit of
 * every placement the catalog knows (the library's `doctorEverywhere`: each cluster's shared
 * database and each tenant database, with the schemas placed there) in the background, bounded by
 * `timeoutMs`; `GET /console/api/doctor` answers the last run: its state and, once done, each
 * placement's findings (severity, code, object, message, fix). One run at a time per server: a
 * start while one runs answers that one. The doctor reads, it never writes.
 */
export function consoleDoctorRoutes(
  api: FastifyInstance,
  options: { catalogPool: Queryable; doctor: ConsoleDoctor; onError: (error: unknown) => void },
): void {
  const { catalogPool, doctor } = options;
  const timeoutMs = doctor.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const run = doctor.run ?? doctorEverywhere;
  let last: DoctorRun = { state: 'idle', startedAt: null, finishedAt: null, error: null, audit: null };
  // the audit under way, even past its timeout: no second one is started beside it
  let inFlight: Promise<unknown> | undefined;

  const answer = () => ({ ...last, timeoutMs, ...summary(last.audit) });

  api.get('/console/api/doctor', async () => answer());

  api.post('/console/api/doctor', async (_request, reply) => {
    if (inFlight) return reply.code(202).send(answer());
    const current: DoctorRun = {
      state: 'running',
      startedAt: new Date().toISOString(),
      finishedAt: null,
      error: null,
      audit: null,
    };
    last = current;
    let timer: NodeJS.Timeout | undefined;
    const audit = run({ catalog: catalogPool, clusters: doctor.clusters });
    const finish = (state: RunState, result: PlacementsAudit | null, error: string | null) => {
      if (current.state !== 'running') return;
      Object.assign(current, { state, audit: result, error, finishedAt: new Date().toISOString() });
    };
    timer = setTimeout(() => finish('timed-out', null, `the audit took longer than ${timeoutMs} ms`), timeoutMs);
    inFlight = audit
      .then(
        (result) => finish('done', result, null),
        (error: unknown) => {
          options.onError(error);
          finish('failed', null, 'the audit failed: see the server log');
        },
      )
      .finally(() => {
        clearTimeout(timer);
        timer = undefined;
        inFlight = undefined;
      });
    return reply.code(202).send(answer());
  });
}

function summary(audit: PlacementsAudit | null): { ok: boolean | null; errors: number; warnings: number } {
  if (!audit) return { ok: null, errors: 0, warnings: 0 };
  let errors = 0;
  let warnings = 0;
  for (const d of audit.databases) {
    if (d.error !== null) errors++;
    for (const f of d.report?.findings ?? [])
      if (f.severity === 'error') errors++;
      else warnings++;
  }
  return { ok: audit.ok, errors, warnings };
}
