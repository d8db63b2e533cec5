import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface Member {
  userId: string;
  name: string;
  email: string;
  role: string;
  since: string;
}

interface HistoryEntry {
  at: string;
  kind: string;
  what: string;
  staffId: string | null;
  detail: string | null;
}

const when = (iso: string) => new Date(iso).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

/** The tenant's members (read as the tenant) and its status and placement history, newest first. */
export function TenantPeople({ tenant }: { tenant: string }) {
  const [members, setMembers] = useState<{ members: Member[] | null; more: boolean; closed?: string } | null>(null);
  const [history, setHistory] = useState<HistoryEntry[] | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const path = `/tenants/${encodeURIComponent(tenant)}`;
    api<{ members: Member[] | null; more: boolean; closed?: string }>('GET', `${path}/members`).then(
      setMembers,
      (e: Error) => setError(e.message),
    );
    api<{ history: HistoryEntry[] }>('GET', `${path}/history`).then(
      (r) => setHistory(r.history),
      (e: Error) => setError(e.message),
    );
  }, [tenant]);
  return html`
    <section aria-labelledby="members-h">
      <h2 id="members-h">Members</h2>
      ${error ? html`<p role="alert" class="error">${error}</p>` : ''}
      ${
        members === null
          ? html`<p>Loading…</p>`
          : members.members === null
            ? html`<p>The tenant is ${members.closed}: its data, members included, is closed.</p>`
            : html`<table>
                  <caption class="visually-hidden">
                    Members of the tenant
                  </caption>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Email</th>
                      <th scope="col">Role</th>
                      <th scope="col">Since</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${members.members.map(
                      (m) =>
                        html`<tr key=${m.userId}>
                          <td>${m.name}</td>
                          <td>${m.email}</td>
                          <td>${m.role}</td>
                          <td>${when(m.since)}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>
                ${members.more ? html`<p>Only the first 200 are listed.</p>` : ''}`
      }
    </section>
    <section aria-labelledby="history-h">
      <h2 id="history-h">Status and placement history</h2>
      ${
        history === null
          ? html`<p>Loading…</p>`
          : html`<table>
              <caption class="visually-hidden">
                Status and placement history, newest first
              </caption>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">What</th>
                  <th scope="col">Staff</th>
                  <th scope="col">Reason or error</th>
                </tr>
              </thead>
              <tbody>
                ${history.map(
                  (h, i) =>
                    html`<tr key=${i}>
                      <td>${when(h.at)}</td>
                      <td>${h.what}</td>
                      <td>${h.staffId ?? ''}</td>
                      <td>${h.detail ?? ''}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
    </section>
  `;
}
