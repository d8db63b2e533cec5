import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { navigate } from './navigate.js';
import { count, duration } from './format.js';

export interface TenantItem {
  id: string;
  slug: string;
  name: string;
  status: string;
  plan: string | null;
  tier: string;
  cluster: string;
  createdAt: string;
  requests24h: number;
  dbTimeMs24h: number;
}

const SORTS = {
  slug: 'Slug',
  created: 'Newest',
  status: 'Status',
  tier: 'Tier',
  requests: 'Requests (24 h)',
  dbTime: 'DB time (24 h)',
} as const;

/** Tenants: search by slug, name or id; filter by status, tier, plan and cluster; sort (by usage too). */
export function TenantsPage() {
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [tier, setTier] = useState('');
  const [plan, setPlan] = useState('');
  const [cluster, setCluster] = useState('');
  const [clusters, setClusters] = useState<string[]>([]);
  useEffect(() => {
    api<{ clusters: { name: string }[] }>('GET', '/clusters').then(
      (r) => setClusters(r.clusters.map((c) => c.name)),
      () => undefined,
    );
  }, []);
  const [sort, setSort] = useState<keyof typeof SORTS>('slug');
  const [tenants, setTenants] = useState<TenantItem[]>();
  const [error, setError] = useState('');
  useEffect(() => {
    const params = new URLSearchParams({ sort });
    if (q.trim()) params.set('q', q.trim());
    if (status) params.set('status', status);
    if (tier) params.set('tier', tier);
    if (plan.trim()) params.set('plan', plan.trim());
    if (cluster) params.set('cluster', cluster);
    const timer = setTimeout(() => {
      api<{ tenants: TenantItem[] }>('GET', `/tenants?${params}`).then(
        (r) => {
          setTenants(r.tenants);
          setError('');
        },
        (e: Error) => setError(e.message),
      );
    }, 150);
    return () => clearTimeout(timer);
  }, [q, status, tier, plan, cluster, sort]);
  return html`<section>
    <h1>Tenants</h1>
    <form class="filters" role="search" onSubmit=${(e: Event) => e.preventDefault()}>
      <label for="q">Search</label>
      <input id="q" type="search" value=${q} onInput=${(e: Event) => setQ((e.target as HTMLInputElement).value)} />
      <label for="status">Status</label>
      <select id="status" value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
        <option value="">Any</option>
        <option value="active">Active</option>
        <option value="suspended">Suspended</option>
        <option value="deleted">Deleted</option>
      </select>
      <label for="tier">Tier</label>
      <select id="tier" value=${tier} onChange=${(e: Event) => setTier((e.target as HTMLSelectElement).value)}>
        <option value="">Any</option>
        <option value="shared">Shared</option>
        <option value="schema">Schema</option>
        <option value="database">Database</option>
      </select>
      <label for="plan">Plan</label>
      <input id="plan" value=${plan} onInput=${(e: Event) => setPlan((e.target as HTMLInputElement).value)} />
      <label for="cluster">Cluster</label>
      <select id="cluster" value=${cluster} onChange=${(e: Event) => setCluster((e.target as HTMLSelectElement).value)}>
        <option value="">Any</option>
        ${clusters.map((c) => html`<option value=${c}>${c}</option>`)}
      </select>
      <label for="sort">Sort by</label>
      <select
        id="sort"
        value=${sort}
        onChange=${(e: Event) => setSort((e.target as HTMLSelectElement).value as keyof typeof SORTS)}
      >
        ${Object.entries(SORTS).map(([value, label]) => html`<option value=${value}>${label}</option>`)}
      </select>
    </form>
    <p role="alert" class="error">${error}</p>
    <table>
      <caption>
        ${tenants === undefined ? 'Loading tenants…' : `${tenants.length} tenants`}
      </caption>
      <thead>
        <tr>
          <th scope="col">Slug</th>
          <th scope="col">Name</th>
          <th scope="col">Status</th>
          <th scope="col">Plan</th>
          <th scope="col">Tier</th>
          <th scope="col">Cluster</th>
          <th scope="col" class="num">Requests (24 h)</th>
          <th scope="col" class="num">DB time (24 h)</th>
        </tr>
      </thead>
      <tbody>
        ${(tenants ?? []).map(
          (t) =>
            html`<tr key=${t.id}>
              <td>
                <a
                  href=${`/console/tenants/${encodeURIComponent(t.slug)}`}
                  onClick=${(e: MouseEvent) => {
                    e.preventDefault();
                    navigate(`tenants/${encodeURIComponent(t.slug)}`);
                  }}
                  >${t.slug}</a
                >
              </td>
              <td>${t.name}</td>
              <td><span class=${`status ${t.status}`}>${t.status}</span></td>
              <td>${t.plan ?? '—'}</td>
              <td>${t.tier}</td>
              <td>${t.cluster}</td>
              <td class="num">${count(t.requests24h)}</td>
              <td class="num">${duration(t.dbTimeMs24h)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
