import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface LogEntry {
  id: string;
  occurredAt: string;
  actorKind: string;
  actorId: string | null;
  action: string;
  reason: string | null;
}

interface ConsoleEntry {
  id: string;
  occurredAt: string;
  staffId: string;
  action: string;
  reason: string | null;
  outcome: string;
  code: string | null;
}

interface Page<T> {
  entries: T[] | null;
  next: string | null;
}

function usePaged<T>(first: string, more: (before: string) => string) {
  const [entries, setEntries] = useState<T[] | null>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState('');
  const load = useCallback(
    async (before?: string) => {
      try {
        const page = await api<Page<T>>('GET', before ? more(before) : first);
        setEntries((old) => (before && old && page.entries ? [...old, ...page.entries] : page.entries));
        setNext(page.next);
      } catch (e) {
        setError((e as Error).message);
      }
    },
    [first, more],
  );
  useEffect(() => void load(), [load]);
  return { entries, next, error, load };
}

function when(value: string): string {
  return new Date(value).toLocaleString();
}

/**
 * A tenant's audit: the console's own entries about it (staff, action, reason, outcome: refusals
 * too, and kept after a purge), and the tenant's audit log (what its admins see), both newest
 * first, 25 at a time.
 */
export function TenantAudit(props: { tenant: string; tenantId: string; status: string }) {
  const base = `/tenants/${encodeURIComponent(props.tenant)}/audit`;
  const log = usePaged<LogEntry>(
    `${base}?limit=25`,
    useCallback((before: string) => `${base}?limit=25&before=${before}`, [base]),
  );
  const staff = usePaged<ConsoleEntry>(
    `/audit?tenant=${props.tenantId}&limit=25`,
    useCallback((before: string) => `/audit?tenant=${props.tenantId}&limit=25&before=${before}`, [props.tenantId]),
  );
  return html`<section aria-labelledby="audit-heading">
    <h2 id="audit-heading">Audit</h2>
    <p role="alert" class="error">${log.error || staff.error}</p>
    <table>
      <caption>
        Console actions on this tenant, newest first
      </caption>
      <thead>
        <tr>
          <th scope="col">When</th>
          <th scope="col">Staff</th>
          <th scope="col">Action</th>
          <th scope="col">Outcome</th>
          <th scope="col">Reason</th>
        </tr>
      </thead>
      <tbody>
        ${(staff.entries ?? []).map(
          (e) =>
            html`<tr key=${e.id}>
              <td>${when(e.occurredAt)}</td>
              <td><code>${e.staffId.slice(0, 8)}</code></td>
              <td>${e.action}</td>
              <td>${e.outcome}${e.code ? ` (${e.code})` : ''}</td>
              <td>${e.reason ?? ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${staff.next ? html`<button type="button" onClick=${() => void staff.load(staff.next!)}>Older console actions</button>` : ''}
    <h3>The tenant's audit log</h3>
    ${
      log.entries === null
        ? html`<p>The audit log is not readable while the tenant is ${props.status}.</p>`
        : html`<table>
            <caption>
              Newest first
            </caption>
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">When</th>
                <th scope="col">Who</th>
                <th scope="col">Action</th>
                <th scope="col">Reason</th>
              </tr>
            </thead>
            <tbody>
              ${log.entries.map(
                (e) =>
                  html`<tr key=${e.id}>
                    <td>${e.id}</td>
                    <td>${when(e.occurredAt)}</td>
                    <td>${e.actorKind}${e.actorId ? html` <code>${e.actorId.slice(0, 8)}</code>` : ''}</td>
                    <td>${e.action}</td>
                    <td>${e.reason ?? ''}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    ${log.next ? html`<button type="button" onClick=${() => void log.load(log.next!)}>Older entries</button>` : ''}
  </section>`;
}
