import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { navigate } from './navigate.js';

export interface TenantItem {
  id: string;
  slug: string;
  name: string;
  status: string;
  plan: string | null;
  tier: string;
  cluster: string;
  createdAt: string;
}

const SORTS = { slug: 'Slug', created: 'Newest', status: 'Status', tier: 'Tier' } as const;

/** Tenants: search by slug, name or id; filter by status and tier; sort. */
export function TenantsPage() {
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [tier, setTier] = useState('');
  const [sort, setSort] = useState<keyof typeof SORTS>('slug');
  const [tenants, setTenants] = useState<TenantItem[]>();
  const [error, setError] = useState('');
  useEffect(() => {
    const params = new URLSearchParams({ sort });
    if (q.trim()) params.set('q', q.trim());
    if (status) params.set('status', status);
    if (tier) params.set('tier', tier);
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
  }, [q, status, tier, sort]);
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
            </tr>`,
        )}
      </tbody>
    </table>
  </section>`;
}
