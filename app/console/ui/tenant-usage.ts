import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api } from './api.js';
import { bytes, count, duration } from './format.js';
import { UsageChart } from './usage-chart.js';

interface UsageWindow {
  start: string;
  requests: number;
  dbTimeMs: number;
  rowsWritten: number;
  storageBytes: number;
}

interface Usage {
  range: '24h' | '7d' | '30d';
  granularity: 'hour' | 'day';
  empty: boolean;
  windows: UsageWindow[];
}

const RANGES = { '24h': 'Last 24 hours', '7d': 'Last 7 days', '30d': 'Last 30 days' } as const;

const CHARTS: { key: keyof Omit<UsageWindow, 'start'>; title: string; format: (n: number) => string }[] = [
  { key: 'requests', title: 'Requests', format: count },
  { key: 'dbTimeMs', title: 'DB time', format: duration },
  { key: 'rowsWritten', title: 'Rows written', format: count },
  { key: 'storageBytes', title: 'Storage', format: bytes },
];

/** A tenant's metered usage over 24 h, 7 d or 30 d: four charts, each with its figures as a table. */
export function TenantUsage(props: { tenant: string }) {
  const [range, setRange] = useState<keyof typeof RANGES>('24h');
  const [usage, setUsage] = useState<Usage>();
  const [error, setError] = useState('');
  useEffect(() => {
    let current = true;
    api<Usage>('GET', `/tenants/${encodeURIComponent(props.tenant)}/usage?range=${range}`).then(
      (u) => {
        if (!current) return;
        setUsage(u);
        setError('');
      },
      (e: Error) => current && setError(e.message),
    );
    return () => {
      current = false;
    };
  }, [props.tenant, range]);
  const series = useMemo(
    () =>
      usage && {
        times: usage.windows.map((w) => w.start),
        values: Object.fromEntries(CHARTS.map((c) => [c.key, usage.windows.map((w) => w[c.key])])),
      },
    [usage],
  );
  return html`<section aria-labelledby="usage-heading" class="usage">
    <h2 id="usage-heading">Usage</h2>
    <fieldset class="ranges">
      <legend>Time range</legend>
      ${Object.entries(RANGES).map(
        ([value, label]) =>
          html`<label class="inline"
            ><input
              type="radio"
              name="usage-range"
              value=${value}
              checked=${range === value}
              onChange=${() => setRange(value as keyof typeof RANGES)}
            />
            ${label}</label
          >`,
      )}
    </fieldset>
    <p role="alert" class="error">${error}</p>
    ${
      !usage || !series
        ? error
          ? ''
          : html`<p aria-busy="true">Loading usage…</p>`
        : usage.empty
          ? html`<p class="empty">
              No usage recorded for this tenant in the ${RANGES[usage.range].toLowerCase()}. Requests, DB time, rows
              written and storage appear here once the server meters them (docs/metering.md).
            </p>`
          : html`<div class="charts">
              ${CHARTS.map(
                (c) =>
                  html`<${UsageChart}
                    key=${`${c.key}-${usage.range}`}
                    id=${`usage-${c.key}`}
                    title=${c.title}
                    times=${series.times}
                    values=${series.values[c.key]}
                    format=${c.format}
                    granularity=${usage.granularity}
                  />`,
              )}
            </div>`
    }
  </section>`;
}
