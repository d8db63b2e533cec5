import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface Finding {
  code: string;
  severity: 'error' | 'warning';
  object: string;
  message: string;
  fix: string;
}

interface DoctorRun {
  state: 'idle' | 'running' | 'done' | 'failed' | 'timed-out';
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  timeoutMs: number;
  ok: boolean | null;
  errors: number;
  warnings: number;
  audit: {
    ok: boolean;
    databases: {
      cluster: string;
      database: string;
      schemas: string[];
      report: { findings: Finding[] } | null;
      error: string | null;
    }[];
  } | null;
}

const SEVERITIES = [
  ['error', 'Errors'],
  ['warning', 'Warnings'],
] as const;

/** The doctor over every placement, run on demand (bounded by the server), its findings grouped by placement and severity. */
export function DoctorPage() {
  const [run, setRun] = useState<DoctorRun>();
  const [error, setError] = useState('');
  const [unavailable, setUnavailable] = useState(false);
  const load = useCallback(async () => {
    try {
      setRun(await api<DoctorRun>('GET', '/doctor'));
      setError('');
    } catch (e) {
      if ((e as { status?: number }).status === 404) setUnavailable(true);
      else setError((e as Error).message);
    }
  }, []);
  useEffect(() => void load(), [load]);
  // while it runs, the page asks every second; the server ends the run at its bound
  const running = run?.state === 'running';
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => void load(), 1000);
    return () => clearInterval(timer);
  }, [running, load]);
  const start = async () => {
    try {
      setRun(await api<DoctorRun>('POST', '/doctor'));
      setError('');
    } catch (e) {
      setError((e as Error).message);
    }
  };
  if (unavailable)
    return html`<section>
      <h1>Doctor</h1>
      <p>
        This server was started without cluster URLs for the console: run <code>tenantry doctor --everywhere</code>.
      </p>
    </section>`;
  return html`<section>
    <h1>Doctor</h1>
    <p>
      Audits every placement the catalog knows (each cluster's shared database and each tenant database) for what would
      let a tenant reach another's rows, and says how to fix each finding. It reads, it never writes.
    </p>
    <button type="button" onClick=${start} disabled=${running}>${running ? 'Running…' : 'Run the doctor'}</button>
    <p role="alert" class="error">${error}</p>
    <p role="status">
      ${
        !run
          ? 'Loading…'
          : run.state === 'idle'
            ? 'Not run yet since the server started.'
            : run.state === 'running'
              ? `Running since ${new Date(run.startedAt!).toLocaleTimeString()} (stops after ${Math.round(run.timeoutMs / 1000)} s)…`
              : run.state === 'done'
                ? `Done at ${new Date(run.finishedAt!).toLocaleTimeString()}: ${run.errors} error(s), ${run.warnings} warning(s)${run.ok ? ', nothing blocks' : ''}.`
                : `${run.state === 'timed-out' ? 'Timed out' : 'Failed'}: ${run.error ?? ''}`
      }
    </p>
    ${(run?.audit?.databases ?? []).map((d) => {
      const findings = d.report?.findings ?? [];
      const id = `placement-${d.cluster}-${d.database}`.replace(/[^a-zA-Z0-9_-]/g, '_');
      return html`<section key=${id} class="card placement" aria-labelledby=${id}>
        <h2 id=${id}>
          ${d.cluster} / ${d.database}
          <span
            class=${`status ${d.error || findings.some((x) => x.severity === 'error') ? 'deleted' : findings.length ? 'suspended' : ''}`}
            >${d.error ? 'not audited' : findings.length === 0 ? 'no findings' : `${findings.length} finding(s)`}</span
          >
        </h2>
        <p class="muted">Schemas: ${d.schemas.length ? d.schemas.join(', ') : '—'}</p>
        ${d.error ? html`<p class="error">${d.error}</p>` : ''}
        ${SEVERITIES.map(([severity, label]) => {
          const some = findings.filter((x) => x.severity === severity);
          if (some.length === 0) return '';
          return html`<h3>${label} (${some.length})</h3>
            <ul class="findings">
              ${some.map(
                (x, i) =>
                  html`<li key=${`${x.code}-${i}`}>
                    <strong>${x.code}</strong> <code>${x.object}</code>: ${x.message} <br /><span class="fix"
                      >Fix: ${x.fix}</span
                    >
                  </li>`,
              )}
            </ul>`;
        })}
      </section>`;
    })}
  </section>`;
}
