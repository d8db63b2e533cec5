import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import uPlotCss from 'uplot/dist/uPlot.min.css';

let styled = false;
/** uPlot's own stylesheet, once per page (the CSP allows inline styles, not inline scripts). */
function ensureStyle(): void {
  if (styled) return;
  styled = true;
  const style = document.createElement('style');
  style.textContent = uPlotCss;
  document.head.append(style);
}

/** One series over time, drawn by uPlot, with the same figures in a table for screen readers and on request. */
export function UsageChart(props: {
  id: string;
  title: string;
  /** Window starts (ISO) and the value of each. */
  times: string[];
  values: number[];
  format: (n: number) => string;
  /** 'hour' or 'day': how the table names a window. */
  granularity: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const [showTable, setShowTable] = useState(false);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    ensureStyle();
    const xs = props.times.map((t) => Date.parse(t) / 1000);
    const chart = new uPlot(
      {
        width: Math.max(280, el.clientWidth || 560),
        height: 180,
        legend: { show: false },
        cursor: { show: true, drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [
          { stroke: '#1a1a1a', grid: { stroke: '#e3e3e3' } },
          {
            stroke: '#1a1a1a',
            grid: { stroke: '#e3e3e3' },
            size: 70,
            values: (_u, ticks) => ticks.map((v) => props.format(v)),
          },
        ],
        series: [
          {},
          {
            label: props.title,
            stroke: '#0b5cad',
            width: 2,
            fill: 'rgba(11, 92, 173, 0.12)',
            points: { show: false },
            paths: uPlot.paths.stepped!({ align: 1 }),
          },
        ],
      },
      [xs, props.values],
      el,
    );
    return () => chart.destroy();
  }, [props.times, props.values, props.title, props.format]);

  const label = (iso: string) =>
    props.granularity === 'day'
      ? new Date(iso).toLocaleDateString('en', { timeZone: 'UTC', month: 'short', day: 'numeric' })
      : new Date(iso).toLocaleString('en', {
          timeZone: 'UTC',
          month: 'short',
          day: 'numeric',
          hour: '2-digit',
          minute: '2-digit',
        });
  const total = props.values.reduce((a, b) => a + b, 0);
  return html`<figure class="chart" aria-labelledby=${`${props.id}-title`}>
    <figcaption id=${`${props.id}-title`}><strong>${props.title}</strong></figcaption>
    <div ref=${box} aria-hidden="true" class="chart-canvas"></div>
    <button
      type="button"
      class="small"
      aria-expanded=${showTable ? 'true' : 'false'}
      aria-controls=${`${props.id}-table`}
      onClick=${() => setShowTable(!showTable)}
    >
      ${showTable ? 'Hide' : 'Show'} the figures
    </button>
    <table id=${`${props.id}-table`} class=${showTable ? 'figures' : 'figures visually-hidden'}>
      <caption>
        ${props.title} per ${props.granularity} (UTC), ${props.values.filter((v) => v > 0).length} of
        ${props.values.length} windows with usage
      </caption>
      <thead>
        <tr>
          <th scope="col">Window (UTC)</th>
          <th scope="col">${props.title}</th>
        </tr>
      </thead>
      <tbody>
        ${props.times.map(
          (t, i) =>
            html`<tr key=${t}>
              <td>${label(t)}</td>
              <td>${props.format(props.values[i] ?? 0)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="muted">
      ${`${props.title === 'Storage' ? 'Largest sample' : 'Total'}: ${props.format(props.title === 'Storage' ? Math.max(0, ...props.values) : total)}`}
    </p>
  </figure>`;
}
