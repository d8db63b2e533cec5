import { html, render } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { api, ApiFailure, setCsrf } from './api.js';
import { navigate } from './navigate.js';
import { STYLE } from './style.js';
import { TenantPage } from './tenant-page.js';
import { TenantsPage } from './tenants-page.js';
import { ActAsBanner } from './act-as.js';
import { ClustersPage } from './clusters-page.js';
import { DoctorPage } from './doctor-page.js';
import { TopPage } from './top-page.js';

/** The console's path below /console: '' (tenants), 'tenants/<slug>', 'top', 'clusters', 'doctor'. */
function currentPath(): string {
  return location.pathname.replace(/^\/console\/?/, '');
}

function SignIn(props: { onSignedIn: () => void }) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    setBusy(true);
    setError('');
    try {
      const session = await api<{ csrfToken: string }>('POST', '/sign-in', {
        email: String(form.get('email') ?? ''),
        password: String(form.get('password') ?? ''),
      });
      setCsrf(session.csrfToken);
      props.onSignedIn();
    } catch (failure) {
      setError(failure instanceof ApiFailure ? failure.message : 'The console could not reach the server');
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="narrow">
    <h1>Tenantry console</h1>
    <p>Staff only. Sign in with your staff account.</p>
    <form onSubmit=${submit} aria-describedby="sign-in-error">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required />
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required />
      <button type="submit" disabled=${busy}>Sign in</button>
      <p id="sign-in-error" role="alert" class="error">${error}</p>
    </form>
  </main>`;
}

function Console() {
  const [state, setState] = useState<'loading' | 'signed-out' | 'signed-in'>('loading');
  const [path, setPath] = useState(currentPath());
  const check = useCallback(() => {
    api<{ csrfToken: string }>('GET', '/session').then(
      (session) => {
        setCsrf(session.csrfToken);
        setState('signed-in');
      },
      () => setState('signed-out'),
    );
  }, []);
  useEffect(() => {
    check();
    const onPop = () => setPath(currentPath());
    addEventListener('popstate', onPop);
    return () => removeEventListener('popstate', onPop);
  }, [check]);
  if (state === 'loading') return html`<p aria-busy="true">Loading…</p>`;
  if (state === 'signed-out') return html`<${SignIn} onSignedIn=${() => setState('signed-in')} />`;
  const signOut = async () => {
    await api('POST', '/sign-out').catch(() => undefined);
    setState('signed-out');
  };
  const link = (to: string, label: string) =>
    html`<a
      href=${`/console/${to}`}
      aria-current=${path === to ? 'page' : undefined}
      onClick=${(e: MouseEvent) => {
        e.preventDefault();
        navigate(to);
      }}
      >${label}</a
    >`;
  const slug = path.startsWith('tenants/') ? decodeURIComponent(path.slice('tenants/'.length)) : undefined;
  return html`<div>
    <header>
      <nav aria-label="Console">
        <strong>Tenantry console</strong>
        ${link('', 'Tenants')} ${link('top', 'Top tenants')} ${link('clusters', 'Clusters')} ${link('doctor', 'Doctor')}
        <button type="button" class="link" onClick=${signOut}>Sign out</button>
      </nav>
    </header>
    <${ActAsBanner} />
    <main>
      ${
        slug !== undefined
          ? html`<${TenantPage} key=${slug} tenant=${slug} />`
          : path === 'clusters'
            ? html`<${ClustersPage} />`
            : path === 'top'
              ? html`<${TopPage} />`
              : path === 'doctor'
                ? html`<${DoctorPage} />`
                : html`<${TenantsPage} />`
      }
    </main>
  </div>`;
}

const style = document.createElement('style');
style.textContent = STYLE;
document.head.append(style);
render(html`<${Console} />`, document.getElementById('console')!);
