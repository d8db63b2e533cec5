import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface ActAsSession {
  grantId: string;
  tenantId: string;
  tenant: string;
  reason: string;
  access: 'read-only';
  expiresAt: string;
}

const CHANGED = 'console-act-as';
const VIEWS = ['members', 'settings', 'recordings', 'usage', 'audit-log', 'me'] as const;

function announce(): void {
  dispatchEvent(new Event(CHANGED));
}

/** The open act-as sessions of this console session, reloaded when one begins or ends, and when one expires. */
function useActAs() {
  const [sessions, setSessions] = useState<ActAsSession[]>([]);
  const load = useCallback(
    () =>
      api<{ sessions: ActAsSession[] }>('GET', '/act-as').then(
        (r) => setSessions(r.sessions),
        () => setSessions([]),
      ),
    [],
  );
  useEffect(() => {
    void load();
    addEventListener(CHANGED, load);
    const timer = setInterval(() => void load(), 15_000);
    return () => {
      removeEventListener(CHANGED, load);
      clearInterval(timer);
    };
  }, [load]);
  // an expiry ends the session: reload then
  useEffect(() => {
    const soonest = Math.min(...sessions.map((s) => new Date(s.expiresAt).getTime()));
    if (!Number.isFinite(soonest)) return;
    const timer = setTimeout(() => void load(), Math.max(0, soonest - Date.now()) + 500);
    return () => clearTimeout(timer);
  }, [sessions, load]);
  return sessions;
}

async function end(grantId: string): Promise<void> {
  await api('POST', '/act-as/end', { grantId }).catch(() => undefined);
  announce();
}

/** The banner shown on every page while the staff member acts as a tenant. */
export function ActAsBanner() {
  const sessions = useActAs();
  if (sessions.length === 0) return '';
  return html`<div class="acting" role="region" aria-label="Acting as a tenant">
    ${sessions.map(
      (s) =>
        html`<p key=${s.grantId}>
          <strong>Acting as ${s.tenant}</strong>
          ${` (read-only) until ${new Date(s.expiresAt).toLocaleTimeString()}. Reason: ${s.reason} `}
          <button type="button" class="inline" onClick=${() => void end(s.grantId)}>Stop acting as ${s.tenant}</button>
        </p>`,
    )}
  </div>`;
}

/** On a tenant's page: begin acting as it with a reason, and, while acting, see it as its admins do. */
export function ActAs(props: { tenant: string }) {
  const sessions = useActAs();
  const [error, setError] = useState('');
  const [view, setView] = useState<(typeof VIEWS)[number]>('members');
  const [data, setData] = useState('');
  const session = sessions.find((s) => s.tenant === props.tenant);
  useEffect(() => {
    if (!session) return setData('');
    api<unknown>('GET', `/act-as/view?grant=${session.grantId}&view=${view}`).then(
      (r) => setData(JSON.stringify(r, null, 2)),
      (e: Error) => setData(`(${e.message})`),
    );
  }, [session?.grantId, view]);

  const begin = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    setError('');
    try {
      await api('POST', `/tenants/${encodeURIComponent(props.tenant)}/act-as`, {
        reason: String(form.get('act-as-reason') ?? ''),
        minutes: Number(form.get('act-as-minutes') ?? 15),
      });
      announce();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return html`<section aria-labelledby="act-as-heading">
    <h2 id="act-as-heading">Act as this tenant</h2>
    <p role="alert" class="error">${error}</p>
    ${
      session
        ? html`<label for="act-as-view">What to see</label>
            <select
              id="act-as-view"
              value=${view}
              onChange=${(e: Event) => setView((e.target as HTMLSelectElement).value as (typeof VIEWS)[number])}
            >
              ${VIEWS.map((v) => html`<option value=${v}>${v}</option>`)}
            </select>
            <pre class="act-as-view" tabindex="0" aria-label="What the tenant's admins see">${data}</pre>`
        : html`<form class="filters" onSubmit=${begin}>
            <label for="act-as-reason">Reason to act as the tenant</label>
            <input id="act-as-reason" name="act-as-reason" minlength="10" maxlength="480" required />
            <label for="act-as-minutes">For (minutes)</label>
            <input id="act-as-minutes" name="act-as-minutes" type="number" min="1" max="60" value="15" />
            <button type="submit">Act as (read-only)</button>
          </form>`
    }
  </section>`;
}
