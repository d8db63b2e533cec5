import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface PurgeView {
  status: string;
  run: { state: 'running' | 'failed' | 'completed'; code?: string; message?: string } | null;
  plan?: {
    steps: number;
    retention: { days: number; dueAt: string | null };
    blockers: { code: string; message: string }[];
    resumes: string | null;
    audit: string;
  } | null;
  report?: { purgeId: string; operator: string; finishedAt: string; steps: number; signatureValid: boolean };
}

/** A soft-deleted tenant's purge: the plan, then the purge itself with the slug typed again and a reason. */
export function TenantPurge(props: { tenant: string }) {
  const [view, setView] = useState<PurgeView>();
  const [error, setError] = useState('');
  const path = `/tenants/${encodeURIComponent(props.tenant)}/purge`;
  const load = useCallback(
    () =>
      api<PurgeView>('GET', path).then(
        (v) => setView(v),
        (e: Error) => setError(e.message),
      ),
    [path],
  );
  useEffect(() => void load(), [load]);
  const running = view?.run?.state === 'running';
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => void load(), 1000);
    return () => clearInterval(timer);
  }, [running, load]);

  const purge = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    setError('');
    try {
      await api('POST', path, {
        confirm: String(form.get('purge-confirm') ?? ''),
        reason: String(form.get('purge-reason') ?? ''),
        ignoreRetention: form.get('ignore-retention') === 'on',
      });
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  if (!view) return html`<p role="alert" class="error">${error}</p>`;
  if (view.status === 'purged' && view.report)
    return html`<section aria-labelledby="purge-heading">
      <h2 id="purge-heading">Purged</h2>
      <p role="status">
        Purged at ${new Date(view.report.finishedAt).toLocaleString()} by ${view.report.operator}; ${view.report.steps}
        steps; report signature ${view.report.signatureValid ? 'valid' : 'INVALID'}.
      </p>
    </section>`;
  const plan = view.plan;
  return html`<section aria-labelledby="purge-heading">
    <h2 id="purge-heading">Purge</h2>
    <p role="alert" class="error">${error}</p>
    ${view.run?.state === 'running' ? html`<p role="status">Purging…</p>` : ''}
    ${view.run?.state === 'failed' ? html`<p role="alert" class="error">${view.run.code}: ${view.run.message}</p>` : ''}
    ${
      plan
        ? html`<p>
              ${plan.steps} steps; the audit log is ${plan.audit === 'keep' ? 'kept' : `${plan.audit}d`}; retention
              ${plan.retention.days}
              days${plan.retention.dueAt ? `, over on ${new Date(plan.retention.dueAt).toLocaleString()}` : ''}.
            </p>
            <ul>
              ${plan.blockers.map((b) => html`<li><strong>${b.code}</strong>: ${b.message}</li>`)}
            </ul>
            <form onSubmit=${purge}>
              <label for="purge-reason">Reason for the purge (kept in the signed purge report)</label>
              <input id="purge-reason" name="purge-reason" minlength="10" maxlength="150" required />
              <label for="purge-confirm"
                >Type the slug <code>${props.tenant}</code> to purge every row of it, for good</label
              >
              <input id="purge-confirm" name="purge-confirm" autocomplete="off" required />
              <label><input type="checkbox" name="ignore-retention" /> Purge before the retention period is over</label>
              <button type="submit" class="danger" disabled=${running}>Purge</button>
            </form>`
        : ''
    }
  </section>`;
}
