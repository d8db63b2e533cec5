import { html } from 'htm/preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { count, duration, percent } from './format.js';
import { navigate } from './navigate.js';

interface TopTenant {
  tenantId: string;
  slug: string;
  plan: string | null;
  tier: string;
  cluster: string;
  dbTimeMs: number;
  dbShare: number;
  statements: number;
  rows: number;
  errors: number;
  timeouts: number;
  waits: number;
  waitMs: number;
  connections: number;
  activeNow: number;
  lockWaitsNow: number;
  longestNowMs: number;
}

interface Top {
  windowMinutes: number;
  instances: number;
  staleInstances: number;
  totalDbTimeMs: number;
  at: string;
  tenants: TopTenant[];
  advice: string[];
  /** Set when the server's role cannot read the app role's backends: the live columns are unknown. */
  liveUnavailable?: string;
  /** Set on a first look: the pools start tagging statements now, the live columns fill in from the next refresh. */
  liveStarting?: string;
  moves: { slug: string; dbShare: number; target: { tier: string; cluster: string; database?: string } }[];
}

/** Refresh intervals offered: never faster than every 5 s, never slower than a minute (or off). */
const REFRESH = { 0: 'Off', 5: 'Every 5 s', 15: 'Every 15 s', 60: 'Every minute' } as const;
const WINDOWS = { 5: 'Last 5 min', 15: 'Last 15 min', 60: 'Last hour' } as const;

/** The tenants using the database now (docs/monitoring.md), and the placement policy's advice with a link to each move. */
export function TopPage() {
  const [windowMinutes, setWindowMinutes] = useState<keyof typeof WINDOWS>(15);
  const [every, setEvery] = useState<keyof typeof REFRESH>(15);
  const [top, setTop] = useState<Top>();
  const [error, setError] = useState('');
  const inFlight = useRef(false);
  const load = useCallback(async () => {
    if (inFlight.current) return; // a slow answer is not stacked with the next one
    inFlight.current = true;
    try {
      setTop(await api<Top>('GET', `/top?window=${windowMinutes}`));
      setError('');
    } catch (e) {
      setError((e as Error).message);
    } finally {
      inFlight.current = false;
    }
  }, [windowMinutes]);
  useEffect(() => {
    void load();
    if (every === 0) return;
    const timer = setInterval(() => {
      if (!document.hidden) void load(); // a tab in the background does not ask
    }, every * 1000);
    return () => clearInterval(timer);
  }, [load, every]);

  const go = (path: string) => (e: MouseEvent) => {
    e.preventDefault();
    navigate(path);
  };
  return html`<section>
    <h1>Top tenants now</h1>
    <form class="filters" onSubmit=${(e: Event) => e.preventDefault()}>
      <label for="top-window">Window</label>
      <select
        id="top-window"
        value=${windowMinutes}
        onChange=${(e: Event) =>
          setWindowMinutes(Number((e.target as HTMLSelectElement).value) as keyof typeof WINDOWS)}
      >
        ${Object.entries(WINDOWS).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>
      <label for="top-refresh">Refresh</label>
      <select
        id="top-refresh"
        value=${every}
        onChange=${(e: Event) => setEvery(Number((e.target as HTMLSelectElement).value) as keyof typeof REFRESH)}
      >
        ${Object.entries(REFRESH).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>
      <button type="button" onClick=${() => void load()}>Refresh now</button>
    </form>
    <p role="alert" class="error">${error}</p>
    <p class="muted">
      ${
        top
          ? `Updated ${new Date(top.at).toLocaleTimeString()} · ${top.instances} instance(s) publishing${top.staleInstances > 0 ? ` (${top.staleInstances} stale: stopped or idle)` : ''} · DB time ${duration(top.totalDbTimeMs)} in the window`
          : 'Loading…'
      }
    </p>
    ${top?.liveUnavailable ? html`<p role="status" class="error">${top.liveUnavailable}</p>` : ''}
    ${!top?.liveUnavailable && top?.liveStarting ? html`<p role="status">${top.liveStarting}</p>` : ''}
    <h2>Advice</h2>
    ${
      top && (top.advice.length > 0 || top.moves.length > 0)
        ? html`<ul class="advice">
            ${top.advice.map((a) => html`<li key=${a}>${a}</li>`)}
            ${top.moves.map(
              (m) =>
                html`<li key=${`move-${m.slug}`}>
                  <a
                    class="button"
                    href=${`/console/tenants/${encodeURIComponent(m.slug)}?move-tier=${m.target.tier}&move-cluster=${encodeURIComponent(m.target.cluster)}`}
                    onClick=${go(
                      `tenants/${encodeURIComponent(m.slug)}?move-tier=${m.target.tier}&move-cluster=${encodeURIComponent(m.target.cluster)}`,
                    )}
                    >Start moving ${m.slug} to its own database on ${m.target.cluster}</a
                  >
                </li>`,
            )}
          </ul>`
        : html`<p>${top ? 'Nothing to advise: no tenant is past its share.' : ''}</p>`
    }
    <table>
      <caption>
        ${
          top
            ? top.tenants.length === 0
              ? 'No activity published in this window (the server publishes every 15 s)'
              : `${top.tenants.length} busiest tenants, by DB time`
            : 'Loading…'
        }
      </caption>
      <thead>
        <tr>
          <th scope="col">Tenant</th>
          <th scope="col">Tier</th>
          <th scope="col">Cluster</th>
          <th scope="col" class="num">DB time</th>
          <th scope="col" class="num">Share</th>
          <th scope="col" class="num">Statements</th>
          <th scope="col" class="num">Rows</th>
          <th scope="col" class="num">Errors</th>
          <th scope="col" class="num">Timeouts</th>
          <th scope="col" class="num">Waits</th>
          <th scope="col" class="num">Connections</th>
          <th scope="col" class="num">Running now</th>
          <th scope="col" class="num">Waiting on a lock</th>
          <th scope="col" class="num">Longest now</th>
        </tr>
      </thead>
      <tbody>
        ${(top?.tenants ?? []).map(
          (t) =>
            html`<tr key=${t.tenantId}>
              <td>
                <a
                  href=${`/console/tenants/${encodeURIComponent(t.slug)}`}
                  onClick=${go(`tenants/${encodeURIComponent(t.slug)}`)}
                  >${t.slug}</a
                >
              </td>
              <td>${t.tier}</td>
              <td>${t.cluster}</td>
              <td class="num">${duration(t.dbTimeMs)}</td>
              <td class="num">${percent(t.dbShare)}</td>
              <td class="num">${count(t.statements)}</td>
              <td class="num">${count(t.rows)}</td>
              <td class="num">${count(t.errors)}</td>
              <td class="num">${count(t.timeouts)}</td>
              <td class="num">
                ${t.waits === 0 ? '0' : `${count(t.waits)} (${Math.round(t.waitMs / t.waits)} ms avg)`}
              </td>
              <td class="num">${count(t.connections)}</td>
              <td class="num">${top?.liveUnavailable ? '?' : count(t.activeNow)}</td>
              <td class="num">${top?.liveUnavailable ? '?' : count(t.lockWaitsNow)}</td>
              <td class="num">${top?.liveUnavailable ? '?' : t.activeNow > 0 ? duration(t.longestNowMs) : '—'}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
