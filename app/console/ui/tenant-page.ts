import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiFailure } from './api.js';
import { TenantMoves } from './tenant-moves.js';
import { TenantPurge } from './tenant-purge.js';
import { ActAs } from './act-as.js';
import { TenantAudit } from './tenant-audit.js';
import { TenantExport } from './tenant-export.js';
import { TenantSettings } from './tenant-settings.js';
import { TenantBranding } from './tenant-branding.js';
import { TenantUsage } from './tenant-usage.js';
import { TenantPeople } from './tenant-people.js';

interface TenantDetail {
  tenant: {
    id: string;
    slug: string;
    name: string;
    status: 'active' | 'suspended' | 'deleted' | 'provisioning';
    plan: string | null;
    createdAt: string;
    updatedAt?: string;
    suspendedAt: string | null;
    deletedAt: string | null;
  };
  placement: { tier: string; cluster: string; database: string | null; schema: string | null; epoch: string };
  audit:
    | {
        id: string;
        occurredAt: string;
        actorKind: string;
        actorId: string | null;
        action: string;
        reason: string | null;
      }[]
    | null;
  features: { moves: boolean; purge: boolean; settings?: boolean; exports?: boolean };
}

type Action = 'suspend' | 'resume' | 'soft-delete' | 'restore';

const ACTIONS: Record<TenantDetail['tenant']['status'], Action[]> = {
  active: ['suspend', 'soft-delete'],
  suspended: ['resume', 'soft-delete'],
  deleted: ['restore'],
  // an onboarding that has not finished: run it again, or delete the abandoned sign-up
  provisioning: ['soft-delete'],
};

const LABEL: Record<Action, string> = {
  suspend: 'Suspend',
  resume: 'Resume',
  'soft-delete': 'Soft-delete',
  restore: 'Restore',
};

function when(value: string | null): string {
  return value ? new Date(value).toLocaleString() : '—';
}

/** One tenant: status, placement, audit log, and the lifecycle actions (each with a reason). */
export function TenantPage(props: { tenant: string }) {
  const [detail, setDetail] = useState<TenantDetail>();
  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    api<TenantDetail>('GET', `/tenants/${encodeURIComponent(props.tenant)}`).then(
      (d) => {
        setDetail(d);
        setError('');
      },
      (e: Error) => setError(e instanceof ApiFailure && e.status === 404 ? 'No such tenant' : e.message),
    );
  }, [props.tenant]);
  useEffect(load, [load]);

  const act = async (event: Event) => {
    event.preventDefault();
    const form = event.target as HTMLFormElement;
    const data = new FormData(form);
    const submitter = (event as SubmitEvent).submitter as HTMLButtonElement | null;
    const action = submitter?.value as Action | undefined;
    if (!action) return;
    setBusy(true);
    setNotice('');
    setError('');
    try {
      const confirm = String(data.get('confirm') ?? '');
      await api('POST', `/tenants/${encodeURIComponent(props.tenant)}/actions`, {
        action,
        reason: String(data.get('reason') ?? ''),
        ...(confirm ? { confirm } : {}),
      });
      form.reset();
      setNotice(`${LABEL[action]}: done`);
      load();
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    } finally {
      setBusy(false);
    }
  };

  if (!detail)
    return html`<section>
      <p role="alert" class="error">${error}</p>
      ${error ? '' : 'Loading…'}
    </section>`;
  const { tenant, placement } = detail;
  return html`<section>
    <h1>${tenant.name} <span class=${`status ${tenant.status}`}>${tenant.status}</span></h1>
    <p role="alert" class="error">${error}</p>
    <p role="status" class="notice">${notice}</p>
    <div class="cards">
      <div class="card">
        <h2>Tenant</h2>
        <dl>
          <dt>Slug</dt>
          <dd>${tenant.slug}</dd>
          <dt>Id</dt>
          <dd><code>${tenant.id}</code></dd>
          <dt>Plan</dt>
          <dd>${tenant.plan ?? '—'}</dd>
          <dt>Created</dt>
          <dd>${when(tenant.createdAt)}</dd>
          <dt>Suspended</dt>
          <dd>${when(tenant.suspendedAt)}</dd>
          <dt>Deleted</dt>
          <dd>${when(tenant.deletedAt)}</dd>
        </dl>
      </div>
      <div class="card">
        <h2>Placement</h2>
        <dl>
          <dt>Tier</dt>
          <dd>${placement.tier}</dd>
          <dt>Cluster</dt>
          <dd>${placement.cluster}</dd>
          <dt>Database</dt>
          <dd>${placement.database ?? 'shared database'}</dd>
          <dt>Schema</dt>
          <dd>${placement.schema ?? '—'}</dd>
          <dt>Route epoch</dt>
          <dd>${placement.epoch}</dd>
        </dl>
      </div>
      <div class="card">
        <h2>Actions</h2>
        <form onSubmit=${act}>
          <label for="reason">Reason (recorded in the tenant's audit log)</label>
          <input id="reason" name="reason" required minlength="10" maxlength="500" />
          ${
            ACTIONS[tenant.status].includes('soft-delete')
              ? html`<label for="confirm">To soft-delete, type the slug <code>${tenant.slug}</code></label>
                  <input id="confirm" name="confirm" autocomplete="off" />`
              : ''
          }
          <div>
            ${ACTIONS[tenant.status].map(
              (a) =>
                html`<button
                  type="submit"
                  name="action"
                  value=${a}
                  class=${a === 'soft-delete' ? 'danger' : ''}
                  disabled=${busy}
                >
                  ${LABEL[a]}
                </button> `,
            )}
          </div>
        </form>
      </div>
    </div>
    <${TenantUsage} tenant=${tenant.slug} />
    <${TenantPeople} key=${`people-${tenant.status}-${tenant.updatedAt}`} tenant=${tenant.slug} />
    ${
      detail.features.moves && tenant.status === 'active'
        ? html`<${TenantMoves} tenant=${tenant.slug} currentTier=${placement.tier} onChange=${load} />`
        : ''
    }
    ${detail.features.purge && tenant.status === 'deleted' ? html`<${TenantPurge} tenant=${tenant.slug} />` : ''}
    <${TenantBranding} tenant=${tenant.slug} />
    ${detail.features.settings && tenant.status !== 'deleted' ? html`<${TenantSettings} tenant=${tenant.slug} />` : ''}
    ${detail.features.exports && tenant.status !== 'deleted' ? html`<${TenantExport} tenant=${tenant.slug} />` : ''}
    ${tenant.status !== 'deleted' ? html`<${ActAs} tenant=${tenant.slug} />` : ''}
    <${TenantAudit}
      key=${`${tenant.status}-${tenant.updatedAt}`}
      tenant=${tenant.slug}
      tenantId=${tenant.id}
      status=${tenant.status}
    />
  </section>`;
}
