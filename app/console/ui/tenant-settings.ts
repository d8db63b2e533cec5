import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface SettingsView {
  values: Record<string, unknown>;
  sources: Record<string, 'library' | 'app' | 'plan' | 'tenant'>;
  plan: string | null;
  version: number;
  ignored: string[];
  keys: string[];
  flags: {
    flag: string;
    description: string | null;
    value: unknown;
    reason: string;
    variant: string;
    override: unknown;
    killed: boolean;
  }[];
}

interface HistoryItem {
  version: number;
  key: string;
  action: string;
  oldValue: unknown;
  newValue: unknown;
  actor: string;
  reason: string | null;
  changedAt: string;
}

const LAYER: Record<string, string> = {
  library: 'library default',
  app: 'application default',
  plan: 'plan',
  tenant: 'tenant override',
};

function show(value: unknown): string {
  return value === null || value === undefined ? '—' : JSON.stringify(value);
}

/** What the operator typed: JSON when it parses (`120`, `true`, `"x"`), else the text itself. */
function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A tenant's settings (value and layer), edits, history with rollback, and flag overrides; each with a reason. */
export function TenantSettings(props: { tenant: string }) {
  const [view, setView] = useState<SettingsView>();
  const [history, setHistory] = useState<HistoryItem[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const base = `/tenants/${encodeURIComponent(props.tenant)}`;
  const load = useCallback(async () => {
    try {
      setView(await api<SettingsView>('GET', `${base}/settings`));
      const h = await api<{ items: HistoryItem[]; next: number | null }>('GET', `${base}/settings/history?limit=20`);
      setHistory(h.items);
      setNext(h.next);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [base]);
  useEffect(() => void load(), [load]);

  const older = async () => {
    if (next === null) return;
    const h = await api<{ items: HistoryItem[]; next: number | null }>(
      'GET',
      `${base}/settings/history?limit=20&before=${next}`,
    );
    setHistory((items) => [...items, ...h.items]);
    setNext(h.next);
  };

  const send = async (path: string, body: Record<string, unknown>, done: string) => {
    setBusy(true);
    setError('');
    setNotice('');
    try {
      await api('POST', path, body);
      setNotice(done);
      await load();
      return true;
    } catch (e) {
      setError((e as Error).message);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const reason = () => (document.getElementById('settings-reason') as HTMLInputElement | null)?.value ?? '';

  const edit = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    const key = String(data.get('setting-key'));
    const unset = (event as SubmitEvent).submitter?.getAttribute('value') === 'unset';
    const ok = await send(
      `${base}/settings`,
      unset
        ? { key, unset: true, reason: reason() }
        : { key, value: parseValue(String(data.get('setting-value'))), reason: reason() },
      unset ? `${key}: override removed` : `${key}: saved`,
    );
    if (ok) (document.getElementById('setting-value') as HTMLInputElement | null)?.setAttribute('value', '');
  };

  if (!view)
    return html`<section aria-labelledby="settings-heading">
      <h2 id="settings-heading">Settings</h2>
      <p role="alert" class="error">${error}</p>
    </section>`;
  return html`<section aria-labelledby="settings-heading" id="settings-panel">
    <h2 id="settings-heading">Settings and flags</h2>
    <p>
      ${`Plan: ${view.plan ?? 'none'}. Settings change number ${view.version}.`}
      ${view.ignored.length > 0 ? ` Ignored stored overrides: ${view.ignored.join(', ')}.` : ''}
    </p>
    <p role="alert" class="error">${error}</p>
    <p role="status" class="notice">${notice}</p>
    <label for="settings-reason">Reason for a settings or flag change (kept in the history and the audit log)</label>
    <input id="settings-reason" name="settings-reason" class="wide" minlength="10" maxlength="500" required />
    <table>
      <caption>
        Resolved values and the layer each comes from
      </caption>
      <thead>
        <tr>
          <th scope="col">Setting</th>
          <th scope="col">Value</th>
          <th scope="col">From</th>
        </tr>
      </thead>
      <tbody>
        ${view.keys.map(
          (k) =>
            html`<tr key=${k}>
              <td><code>${k}</code></td>
              <td>${show(view.values[k])}</td>
              <td>${LAYER[view.sources[k] ?? ''] ?? view.sources[k]}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <form class="filters" onSubmit=${edit}>
      <label for="setting-key">Setting</label>
      <select id="setting-key" name="setting-key">
        ${view.keys.map((k) => html`<option value=${k}>${k}</option>`)}
      </select>
      <label for="setting-value">New value (JSON or text)</label>
      <input id="setting-value" name="setting-value" autocomplete="off" />
      <button type="submit" value="set" disabled=${busy}>Save setting</button>
      <button type="submit" value="unset" disabled=${busy}>Remove override</button>
    </form>
    <table>
      <caption>
        Flags for this tenant
      </caption>
      <thead>
        <tr>
          <th scope="col">Flag</th>
          <th scope="col">Value</th>
          <th scope="col">Why</th>
          <th scope="col">Override</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${view.flags.map(
          (f) =>
            html`<tr key=${f.flag}>
              <td><code>${f.flag}</code>${f.description ? html`<br /><small>${f.description}</small>` : ''}</td>
              <td>${show(f.value)}</td>
              <td>${f.variant}${f.killed ? ' (killed everywhere)' : ''}</td>
              <td>${show(f.override)}</td>
              <td>
                ${(['on', 'off', 'clear'] as const).map(
                  (state) =>
                    html`<button
                        type="button"
                        disabled=${busy}
                        aria-label=${`${state === 'clear' ? 'Clear override of' : `Turn ${state}`} ${f.flag}`}
                        onClick=${() =>
                          void send(
                            `${base}/flags/${encodeURIComponent(f.flag)}`,
                            { state, reason: reason() },
                            `${f.flag}: ${state}`,
                          )}
                      >
                        ${state === 'clear' ? 'Clear' : state === 'on' ? 'On' : 'Off'}
                      </button>
                      ${' '}`,
                )}
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    <table>
      <caption>
        Settings history, newest first
      </caption>
      <thead>
        <tr>
          <th scope="col">Change</th>
          <th scope="col">When</th>
          <th scope="col">Who</th>
          <th scope="col">Setting</th>
          <th scope="col">Old → new</th>
          <th scope="col">Why</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${history.map(
          (h) =>
            html`<tr key=${`${h.version}-${h.key}`}>
              <td>${h.version} ${h.action}</td>
              <td>${new Date(h.changedAt).toLocaleString()}</td>
              <td><code>${h.actor.length > 20 ? `${h.actor.slice(0, 14)}…` : h.actor}</code></td>
              <td><code>${h.key}</code></td>
              <td>${show(h.oldValue)} → ${show(h.newValue)}</td>
              <td>${h.reason ?? ''}</td>
              <td>
                <button
                  type="button"
                  disabled=${busy}
                  aria-label=${`Roll back to change ${h.version}`}
                  onClick=${() =>
                    void send(
                      `${base}/settings/rollback`,
                      { version: h.version, reason: reason() },
                      `Rolled back to change ${h.version}`,
                    )}
                >
                  Roll back to here
                </button>
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${next !== null ? html`<button type="button" onClick=${() => void older()}>Older changes</button>` : ''}
    <p>
      <button
        type="button"
        disabled=${busy}
        onClick=${() => void send(`${base}/settings/rollback`, { version: 0, reason: reason() }, 'Every override removed (change 0)')}
      >
        Roll back to no overrides
      </button>
    </p>
  </section>`;
}
