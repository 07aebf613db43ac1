import { randomBytes } from 'node:crypto';

/**
 * The HTML shell of every ARIES webview: a strict Content-Security-Policy (nothing but our own
 * bundle, by nonce; no inline script or style), the bundle's script and stylesheet, and an empty
 * #app the script fills. Webview bundles live in dist/webview/<name>.js (+ .css). No `vscode`
 * import: unit-tested under plain Node.
 */
export interface WebviewPage {
  title: string;
  /** webview.cspSource */
  cspSource: string;
  scriptUri: string;
  styleUris: string[];
  nonce?: string;
  /** Browser harness only (webview/test/harness): a host shim loaded before the bundle, same nonce. */
  preludeUri?: string;
  /** Browser harness only: the harness talks to its host over HTTP. In VS Code nothing may connect. */
  connectSrc?: string;
}

export function newNonce(): string {
  return randomBytes(18).toString('base64').replace(/[+/=]/g, '');
}

const escapeAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function webviewHtml(page: WebviewPage): string {
  const nonce = page.nonce ?? newNonce();
  const csp = [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src ${page.cspSource}`,
    `font-src ${page.cspSource}`,
    `img-src ${page.cspSource} data:`,
    `connect-src ${page.connectSrc ?? "'none'"}`,
    "form-action 'none'",
    "base-uri 'none'",
  ].join('; ');
  const styles = page.styleUris.map((u) => `  <link rel="stylesheet" href="${escapeAttr(u)}">`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="${escapeAttr(csp)}">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeAttr(page.title)}</title>
${styles}
</head>
<body>
  <main id="app"></main>
${page.preludeUri ? `  <script nonce="${nonce}" src="${escapeAttr(page.preludeUri)}"></script>\n` : ''}  <script type="module" nonce="${nonce}" src="${escapeAttr(page.scriptUri)}"></script>
</body>
</html>
`;
}
