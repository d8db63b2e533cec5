import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { bytes, count } from './format.js';

interface ClusterLoad {
  name: string;
  status: string;
  capacity: number;
  tiers: { shared: number; schema: number; database: number };
  tenants: number;
  connections: number | null;
  databaseBytes: number | null;
  error: string | null;
}

/** Clusters and their load: live tenants per tier against capacity, connections now, size of their databases. */
export function ClustersPage() {
  const [clusters, setClusters] = useState<ClusterLoad[]>();
  const [error, setError] = useState('');
  useEffect(() => {
    api<{ clusters: ClusterLoad[] }>('GET', '/clusters/load').then(
      (r) => setClusters(r.clusters),
      (e: Error) => setError(e.message),
    );
  }, []);
  return html`<section>
    <h1>Clusters</h1>
    <p role="alert" class="error">${error}</p>
    <table>
      <caption>
        ${clusters === undefined ? 'Loading clusters…' : 'Clusters, their live tenants per tier, connections now and database size'}
      </caption>
      <thead>
        <tr>
          <th scope="col">Cluster</th>
          <th scope="col">Status</th>
          <th scope="col" class="num">Tenants / capacity</th>
          <th scope="col" class="num">Shared</th>
          <th scope="col" class="num">Schema</th>
          <th scope="col" class="num">Database</th>
          <th scope="col" class="num">Connections</th>
          <th scope="col" class="num">Database size</th>
        </tr>
      </thead>
      <tbody>
        ${(clusters ?? []).map(
          (c) =>
            html`<tr key=${c.name}>
              <th scope="row">${c.name}</th>
              <td><span class=${`status ${c.status === 'active' ? '' : 'suspended'}`}>${c.status}</span></td>
              <td class="num">
                ${count(c.tenants)} / ${count(c.capacity)}
                <meter
                  min="0"
                  max=${Math.max(1, c.capacity)}
                  value=${c.tenants}
                  aria-label=${`${c.name}: tenants against capacity`}
                ></meter>
              </td>
              <td class="num">${count(c.tiers.shared)}</td>
              <td class="num">${count(c.tiers.schema)}</td>
              <td class="num">${count(c.tiers.database)}</td>
              <td class="num">
                ${c.connections === null ? (c.error ? html`<span class="error">${c.error}</span>` : '—') : count(c.connections)}
              </td>
              <td class="num">${c.databaseBytes === null ? '—' : bytes(c.databaseBytes)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
