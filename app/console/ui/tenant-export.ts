import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiFailure, csrfToken } from './api.js';

interface ExportRun {
  id: string;
  state: 'running' | 'ready' | 'failed';
  startedAt: string;
  finishedAt?: string;
  bytes?: number;
  tables?: number;
  rows?: number;
  code?: string;
  message?: string;
}

/**
 * A tenant's exports: start one with a reason, follow it, download the signed archive. The
 * download is fetched with the session's CSRF header (a plain link could be planted by another
 * site), then saved from memory.
 */
export function TenantExport(props: { tenant: string }) {
  const [runs, setRuns] = useState<ExportRun[]>([]);
  const [error, setError] = useState('');
  const path = `/tenants/${encodeURIComponent(props.tenant)}/exports`;
  const load = useCallback(
    () =>
      api<{ exports: ExportRun[] }>('GET', path).then(
        (r) => setRuns(r.exports),
        (e: Error) => setError(e.message),
      ),
    [path],
  );
  useEffect(() => void load(), [load]);
  const running = runs.some((r) => r.state === 'running');
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => void load(), 1000);
    return () => clearInterval(timer);
  }, [running, load]);

  const start = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    setError('');
    try {
      await api('POST', path, { reason: String(new FormData(form).get('export-reason') ?? '') });
      form.reset();
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const download = async (run: ExportRun) => {
    setError('');
    const response = await fetch(`/console/api${path}/${run.id}/download`, {
      headers: { 'x-csrf-token': csrfToken() },
      credentials: 'same-origin',
    });
    if (!response.ok) {
      const data = (await response.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
      setError(new ApiFailure(response.status, data.error?.code ?? 'ERROR', data.error?.message ?? '').message);
      return;
    }
    const name = /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ?? 'tenant.tenant';
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  return html`<section aria-labelledby="export-heading">
    <h2 id="export-heading">Export</h2>
    <p role="alert" class="error">${error}</p>
    <form class="filters" onSubmit=${start}>
      <label for="export-reason">Reason for the export</label>
      <input id="export-reason" name="export-reason" minlength="10" maxlength="500" required />
      <button type="submit" disabled=${running}>Start export</button>
    </form>
    <table>
      <caption>
        ${running ? 'An export is running: updated every second' : "This server's exports of the tenant (kept an hour)"}
      </caption>
      <thead>
        <tr>
          <th scope="col">Started</th>
          <th scope="col">State</th>
          <th scope="col">Size</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${runs.map(
          (r) =>
            html`<tr key=${r.id}>
              <td>${new Date(r.startedAt).toLocaleString()}</td>
              <td>${r.state}${r.code ? ` (${r.code})` : ''}</td>
              <td>
                ${r.bytes !== undefined ? `${r.tables} tables, ${r.rows} rows, ${Math.ceil(r.bytes / 1024)} KiB` : '—'}
              </td>
              <td>
                ${
                  r.state === 'ready'
                    ? html`<button type="button" onClick=${() => void download(r)}>Download archive</button>`
                    : ''
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
