/**
 * The host app's HTML. Plain template strings: every value that did not come from this file goes
 * through `escapeHtml`, so a hostile client name or login hint cannot inject markup.
 */

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d1f23; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
  h1 { font-size: 1.4rem; margin-top: 0; }
  label { display: block; margin-top: 1rem; font-weight: 600; }
  input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; margin-top: .25rem; }
  .actions { display: flex; gap: .75rem; margin-top: 1.5rem; }
  button { padding: .55rem 1.2rem; font-size: 1rem; border-radius: 4px; border: 1px solid #345; cursor: pointer; }
  button.primary { background: #234e8c; color: #fff; }
  button.secondary { background: #fff; color: #234e8c; }
  .error { color: #a4141b; background: #fdecec; padding: .5rem .75rem; border-radius: 4px; }
  .hint { color: #555; font-size: .9rem; }
`;

/** A complete page around `body`. */
export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export interface SignInPageInput {
  /** The login_request JWT, carried through the form unchanged and verified again on POST. */
  loginRequest: string;
  csrf: string;
  /** Who is asking ("to continue to …"): the client's name, or the host of a URL client_id (see requesterOf). */
  requester: string | undefined;
  /** Pre-filled username (login_hint, or what was typed before a failed attempt). */
  username: string;
  error: string | undefined;
  /** A line under the form (the demo shows its users here). */
  hint: string | undefined;
}

/** The sign-in form: labelled inputs, "Sign in", and "Cancel" (which answers access_denied). */
export function signInPage(input: SignInPageInput): string {
  const continueTo = input.requester ? `<p>to continue to <strong>${escapeHtml(input.requester)}</strong></p>` : '';
  const error = input.error ? `<p class="error" role="alert">${escapeHtml(input.error)}</p>` : '';
  return layout(
    'Sign in',
    `<h1>Sign in to the host app</h1>
${continueTo}
${error}
<form method="post" action="/login">
  <input type="hidden" name="login_request" value="${escapeHtml(input.loginRequest)}">
  <input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
  <label for="username">Username</label>
  <input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${escapeHtml(input.username)}"${input.username ? '' : ' autofocus'}>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required${input.username ? ' autofocus' : ''}>
  <div class="actions">
    <button class="primary" type="submit" name="action" value="sign-in">Sign in</button>
    <button class="secondary" type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
  </div>
</form>
${input.hint ? `<p class="hint">${escapeHtml(input.hint)}</p>` : ''}`,
  );
}

/**
 * GET /: who is signed in to the host app itself, and a link to Gatehouse's connected-apps page
 * (docs/connected-apps.md), where the user sees and revokes the apps they allowed.
 */
export function homePage(
  user: { name: string; username: string } | null,
  csrf: string,
  connectedAppsUrl?: string,
): string {
  if (!user) return layout('Host app', '<h1>Host app</h1>\n<p>Nobody is signed in.</p>');
  const apps = connectedAppsUrl
    ? `<p><a href="${escapeHtml(connectedAppsUrl)}">Connected apps</a>: the apps you allowed to use your account.</p>\n`
    : '';
  return layout(
    'Host app',
    `<h1>Host app</h1>
<p>Signed in as <strong>${escapeHtml(user.name)}</strong> (${escapeHtml(user.username)}).</p>
${apps}<form method="post" action="/logout">
  <input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
  <button class="secondary" type="submit">Sign out</button>
</form>`,
  );
}

/** A plain error page. */
export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n<p>${escapeHtml(message)}</p>`);
}
