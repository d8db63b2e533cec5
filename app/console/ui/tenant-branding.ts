import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

interface BrandPreview {
  brand: {
    displayName: string;
    emailSenderName: string;
    colors: { primary: string; onPrimary: string; background: string; text: string };
    logo: { contentType: string; width: number; height: number; size: number } | null;
  };
  source: 'tenant' | 'default';
  version: number;
  logo: string | null;
  contrast: { pair: string; field: string; ratio: number; min: number }[];
}

const HEX = /^#[0-9a-f]{6}$/;
const colour = (c: string) => (HEX.test(c) ? c : '#000000');

/** A tenant's brand as its sign-in page shows it, with the contrast of each colour pair (read only). */
export function TenantBranding(props: { tenant: string }) {
  const [preview, setPreview] = useState<BrandPreview>();
  const [error, setError] = useState('');
  useEffect(() => {
    api<BrandPreview>('GET', `/tenants/${encodeURIComponent(props.tenant)}/brand`).then(setPreview, (e: Error) =>
      setError(e.message),
    );
  }, [props.tenant]);
  if (error) return html`<p role="alert" class="error">Branding: ${error}</p>`;
  if (!preview) return html`<p>Loading branding…</p>`;
  const { brand } = preview;
  const c = brand.colors;
  return html`<section aria-labelledby="branding-title">
    <h2 id="branding-title">Branding</h2>
    <div class="cards">
      <div class="card">
        <div
          data-testid="brand-preview"
          style=${`background:${colour(c.background)};color:${colour(c.text)};padding:1rem;border:1px solid #ccc;border-radius:4px`}
        >
          ${
            preview.logo
              ? html`<img
                  src=${preview.logo}
                  alt=${brand.displayName}
                  style="max-width:8rem;max-height:4rem;display:block"
                />`
              : ''
          }
          <strong data-testid="brand-name">${brand.displayName}</strong>
          <div>
            <button
              type="button"
              disabled
              style=${`background:${colour(c.primary)};color:${colour(c.onPrimary)};border:0;padding:0.4rem 0.8rem;margin-top:0.5rem`}
            >
              Sign in
            </button>
          </div>
        </div>
        <p>${preview.source === 'default' ? 'Default brand (the tenant set none)' : `Change ${preview.version}`}</p>
      </div>
      <div class="card">
        <dl>
          <dt>E-mail sender</dt>
          <dd>${brand.emailSenderName}</dd>
          <dt>Logo</dt>
          <dd>
            ${brand.logo ? `${brand.logo.contentType}, ${brand.logo.width}×${brand.logo.height}, ${brand.logo.size} bytes` : '—'}
          </dd>
          ${preview.contrast.map(
            (p) =>
              html`<dt>${p.pair}</dt>
                <dd>
                  ${`${p.ratio.toFixed(2)}:1 `}${
                    p.ratio >= p.min ? `(AA ≥ ${p.min}:1)` : html`<strong>below AA ${p.min}:1</strong>`
                  }
                </dd>`,
          )}
        </dl>
      </div>
    </div>
  </section>`;
}
