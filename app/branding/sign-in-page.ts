import escapeHtml from 'escape-html';
import type { Brand } from 'tenantry/branding';

/**
 * The tenant's branded sign-in page. Every brand field goes through `escapeHtml` (and colours,
 * which the library already holds to `#rrggbb`, are checked again before they reach the CSS): a
 * display name `<script>…` is shown as text, never run. The page's one script and one style carry
 * the response's CSP nonce; nothing else may run or load but same-origin images.
 */
export function signInPage(input: { brand: Brand; slug: string; logoUrl: string | null; nonce: string }): string {
  const { brand, nonce } = input;
  const e = escapeHtml;
  const css = (c: string) => (/^#[0-9a-f]{6}$/.test(c) ? c : '#000000');
  const { primary, onPrimary, background, text } = brand.colors;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · ${e(brand.displayName)}</title>
<style nonce="${e(nonce)}">
  :root { --primary: ${css(primary)}; --on-primary: ${css(onPrimary)}; --background: ${css(background)}; --text: ${css(text)}; }
  body { margin: 0; font-family: system-ui, sans-serif; background: var(--background); color: var(--text); }
  main { max-width: 22rem; margin: 4rem auto; padding: 0 1rem; }
  .logo { max-width: 10rem; max-height: 5rem; display: block; margin-bottom: 1rem; }
  h1 { font-size: 1.5rem; margin: 0 0 1.5rem; }
  label { display: block; margin: 0.75rem 0 0.25rem; }
  input { width: 100%; box-sizing: border-box; padding: 0.5rem; font: inherit; }
  button { margin-top: 1.25rem; width: 100%; padding: 0.6rem; font: inherit; border: 0; border-radius: 4px;
           background: var(--primary); color: var(--on-primary); cursor: pointer; }
  [role=status] { min-height: 1.5rem; margin-top: 1rem; }
</style>
</head>
<body>
<main>
${input.logoUrl ? `<img class="logo" src="${e(input.logoUrl)}" alt="${e(brand.displayName)}" data-brand="logo">` : ''}
<h1 data-brand="name">${e(brand.displayName)}</h1>
<form id="sign-in" data-tenant="${e(input.slug)}">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="username" required>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">Sign in to ${e(brand.displayName)}</button>
  <p role="status"></p>
</form>
</main>
<script nonce="${e(nonce)}">
  const form = document.getElementById('sign-in');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const status = form.querySelector('[role=status]');
    const answer = await fetch('/auth/sign-in', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: form.email.value, password: form.password.value, tenant: form.dataset.tenant }),
    });
    status.textContent = answer.ok ? 'Signed in.' : 'Wrong email or password.';
  });
</script>
</body>
</html>
`;
}
