/** The demo client's HTML; every outside value goes through `escapeHtml`. */

export function escapeHtml(value: unknown): string {
  return String(value)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f6f4ef; color: #1d1f23; }
  main { max-width: 44rem; margin: 3rem auto; background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 3px #0002; }
  h1 { font-size: 1.4rem; margin-top: 0; }
  a.button, button { display: inline-block; padding: .55rem 1.2rem; font-size: 1rem; border-radius: 4px; border: 1px solid #2d5a27; background: #2d5a27; color: #fff; text-decoration: none; cursor: pointer; }
  button.secondary { background: #fff; color: #2d5a27; }
  form { display: inline; margin-right: .5rem; }
  pre { background: #f1f1f1; padding: .75rem; overflow-x: auto; border-radius: 4px; }
  .note { color: #555; }
  .error { color: #a4141b; }
  dt { font-weight: 600; }
`;

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

/** Signed out: the link that starts authorization code + PKCE at Gatehouse. */
export function startPage(authorizeUrl: string): string {
  return layout(
    'Demo client',
    `<h1>Demo client</h1>
<p>This app is an OAuth client of Gatehouse. It asks for an access token for the demo API, then calls the API with it.</p>
<p><a class="button" href="${escapeHtml(authorizeUrl)}">Sign in with Gatehouse</a></p>`,
  );
}

/** Back from Gatehouse's end_session_endpoint: signed out there and in every app it told. */
export function signedOutPage(authorizeUrl: string): string {
  return layout(
    'Signed out',
    `<h1>Signed out everywhere</h1>
<p class="note" role="status">Gatehouse ended your session and told every app you signed in to through it.</p>
<p><a class="button" href="${escapeHtml(authorizeUrl)}">Sign in with Gatehouse</a></p>`,
  );
}

export interface SessionView {
  sub: string;
  scope: string;
  /** With `openid` in SCOPE: the ID token's claims. */
  idTokenClaims?: Record<string, unknown> | null;
  accessTokenExpiresAt: number | null;
  hasRefreshToken: boolean;
  apiStatus: number | null;
  apiBody: string | null;
  message: string | undefined;
  csrf: string;
  /** An ID token to send as id_token_hint: "Sign out everywhere" is offered. */
  canSignOutEverywhere?: boolean;
}

function button(action: string, label: string, csrf: string, secondary = false): string {
  return `<form method="post" action="${action}"><input type="hidden" name="csrf" value="${escapeHtml(csrf)}"><button type="submit"${secondary ? ' class="secondary"' : ''}>${escapeHtml(label)}</button></form>`;
}

/** An expiry in seconds as an ISO date; a response may give none, or one no Date can hold. */
function expiry(seconds: number | null): string {
  const date = new Date(seconds === null ? Number.NaN : seconds * 1000);
  return Number.isNaN(date.getTime()) ? 'not given' : date.toISOString();
}

/** Signed in: the tokens' facts, the API's answer and the buttons. */
export function sessionPage(view: SessionView): string {
  const api =
    view.apiStatus === null
      ? '<p>Not called yet.</p>'
      : `<p>HTTP ${view.apiStatus}</p>\n<pre>${escapeHtml(view.apiBody ?? '')}</pre>`;
  return layout(
    'Demo client',
    `<h1>Demo client</h1>
${view.message ? `<p class="note" role="status">${escapeHtml(view.message)}</p>` : ''}
<dl>
  <dt>Signed in as (sub)</dt><dd>${escapeHtml(view.sub)}</dd>
  <dt>Scope</dt><dd>${escapeHtml(view.scope || '(none)')}</dd>
  <dt>Access token expires</dt><dd>${escapeHtml(expiry(view.accessTokenExpiresAt))}</dd>
  <dt>Refresh token</dt><dd>${view.hasRefreshToken ? 'yes' : 'no'}</dd>
</dl>
${
  view.idTokenClaims
    ? `<h2>The ID token's claims</h2>\n<pre>${escapeHtml(JSON.stringify(view.idTokenClaims, null, 2))}</pre>`
    : ''
}
<h2>The API's answer</h2>
${api}
<p>
${button('/call', 'Call the API', view.csrf)}
${button('/refresh', 'Refresh tokens', view.csrf, true)}
${button('/revoke', 'Revoke', view.csrf, true)}
${button('/forget', 'Forget tokens', view.csrf, true)}
${view.canSignOutEverywhere ? button('/sign-out', 'Sign out everywhere', view.csrf, true) : ''}
</p>`,
  );
}

export function errorPage(title: string, message: string): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1>\n<p class="error">${escapeHtml(message)}</p>\n<p><a href="/">Start again</a></p>`,
  );
}
