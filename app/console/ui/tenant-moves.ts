import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface Move {
  id: string;
  step: string;
  open: boolean;
  source: { tier: string; cluster: string; schema?: string | null; database?: string | null };
  target: { tier: string; cluster: string; schema?: string | null; database?: string | null };
  table: string | null;
  copied: Record<string, number>;
  error: string | null;
  freezeMs: number | null;
  createdAt: string;
  finishedAt: string | null;
}

function place(p: Move['target']): string {
  return `${p.tier} on ${p.cluster}${p.schema ? ` (${p.schema})` : ''}${p.database ? ` (${p.database})` : ''}`;
}

function copied(m: Move): string {
  const total = Object.values(m.copied).reduce((a, b) => a + b, 0);
  return total === 0 ? '—' : `${total} rows${m.table && m.open ? ` (now ${m.table})` : ''}`;
}

/** A tenant's moves: start one, watch it live (polled every second while one is open), resume or roll back. */
export function TenantMoves(props: { tenant: string; currentTier: string; onChange: () => void }) {
  const [moves, setMoves] = useState<Move[]>([]);
  const [clusters, setClusters] = useState<string[]>(['home']);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const path = `/tenants/${encodeURIComponent(props.tenant)}/moves`;
  // a move advised on the "Top tenants now" page arrives with its target: ?move-tier=&move-cluster=
  const advised = new URLSearchParams(location.search);
  const { onChange } = props;
  const load = useCallback(async () => {
    try {
      const r = await api<{ moves: Move[] }>('GET', path);
      setMoves((previous) => {
        // the placement changed when a move finished: the page reloads its own part
        if (previous.some((m) => m.open) && !r.moves.some((m) => m.open)) onChange();
        return r.moves;
      });
    } catch (e) {
      setError((e as Error).message);
    }
  }, [path, onChange]);
  useEffect(() => {
    void load();
    api<{ clusters: { name: string }[] }>('GET', '/clusters').then(
      (r) => setClusters(r.clusters.map((c) => c.name)),
      () => undefined,
    );
  }, [load]);
  // a started move is recorded once its target is prepared (a schema or database made and
  // migrated): until then the page keeps asking, for at most two minutes
  const [startedAt, setStartedAt] = useState(0);
  const opened = moves.some((m) => m.open);
  useEffect(() => {
    if (opened) setStartedAt(0);
  }, [opened]);
  const watching = opened || (startedAt > 0 && Date.now() - startedAt < 120_000);
  useEffect(() => {
    if (!watching) return;
    const timer = setInterval(() => void load(), 1000);
    return () => clearInterval(timer);
  }, [watching, load]);

  const send = async (url: string, body: Record<string, string>) => {
    setBusy(true);
    setError('');
    try {
      await api('POST', url, body);
      setStartedAt(Date.now());
      await load();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const start = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    void send(path, {
      tier: String(form.get('tier')),
      cluster: String(form.get('cluster')),
      reason: String(form.get('move-reason') ?? ''),
    });
  };
  const act = (move: Move, action: 'resume' | 'rollback') => {
    const reason = (document.getElementById('move-reason') as HTMLInputElement | null)?.value ?? '';
    void send(`${path}/${move.id}/${action}`, { reason });
  };

  return html`<section aria-labelledby="moves-heading">
    <h2 id="moves-heading">Moves</h2>
    <p role="alert" class="error">${error}</p>
    <form class="filters" onSubmit=${start}>
      <label for="tier">Move to tier</label>
      <select id="tier" name="tier">
        ${['shared', 'schema', 'database']
          .filter((t) => t !== props.currentTier)
          .map((t) => html`<option value=${t} selected=${advised.get('move-tier') === t}>${t}</option>`)}
      </select>
      <label for="cluster">on cluster</label>
      <select id="cluster" name="cluster">
        ${clusters.map((c) => html`<option value=${c} selected=${advised.get('move-cluster') === c}>${c}</option>`)}
      </select>
      <label for="move-reason">Reason for the move</label>
      <input id="move-reason" name="move-reason" minlength="10" maxlength="500" required />
      <button type="submit" disabled=${busy || watching}>Start move</button>
    </form>
    <table>
      <caption>
        ${opened ? 'A move is running: updated every second' : watching ? 'Preparing the target…' : 'Recent moves'}
      </caption>
      <thead>
        <tr>
          <th scope="col">Started</th>
          <th scope="col">From</th>
          <th scope="col">To</th>
          <th scope="col">Step</th>
          <th scope="col">Copied</th>
          <th scope="col">Freeze</th>
          <th scope="col"><span class="visually-hidden">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        ${moves.map(
          (m) =>
            html`<tr key=${m.id}>
              <td>${new Date(m.createdAt).toLocaleString()}</td>
              <td>${place(m.source)}</td>
              <td>${place(m.target)}</td>
              <td><span class="step">${m.step}</span>${m.error ? html` <span class="error">${m.error}</span>` : ''}</td>
              <td>${copied(m)}</td>
              <td>${m.freezeMs === null ? '—' : `${m.freezeMs} ms`}</td>
              <td>
                ${
                  m.open
                    ? html`<button type="button" disabled=${busy} onClick=${() => act(m, 'resume')}>Resume</button> ${
                          m.step !== 'switched'
                            ? html` <button
                                type="button"
                                class="danger"
                                disabled=${busy}
                                onClick=${() => act(m, 'rollback')}
                              >
                                Roll back
                              </button>`
                            : ''
                        }`
                    : ''
                }
              </td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
