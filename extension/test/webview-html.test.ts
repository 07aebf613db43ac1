import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newNonce, webviewHtml } from '../src/webview-html';

describe('webview HTML shell', () => {
  const html = webviewHtml({ title: 'Try "a" <Prompt>', cspSource: 'https://file+.vscode-resource.vscode-cdn.net', scriptUri: 'https://x/try-prompt.js', styleUris: ['https://x/try-prompt.css'], nonce: 'abc123' });

  it('allows only our script by nonce and our own styles; nothing inline', () => {
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    assert.equal(csp, "default-src 'none'; script-src 'nonce-abc123'; style-src https://file+.vscode-resource.vscode-cdn.net; font-src https://file+.vscode-resource.vscode-cdn.net; img-src https://file+.vscode-resource.vscode-cdn.net data:; connect-src 'none'; form-action 'none'; base-uri 'none'");
    assert.doesNotMatch(html, /unsafe-inline|unsafe-eval/);
    assert.deepEqual([...html.matchAll(/<script([^>]*)>([^<]*)<\/script>/g)].map((m) => [m[1], m[2]]), [[' type="module" nonce="abc123" src="https://x/try-prompt.js"', '']]);
    assert.doesNotMatch(html, /<style|style="/);
    assert.match(html, /<link rel="stylesheet" href="https:\/\/x\/try-prompt.css">/);
  });

  it('escapes the title and makes a fresh nonce per page', () => {
    assert.match(html, /<title>Try &quot;a&quot; &lt;Prompt&gt;<\/title>/);
    const a = newNonce();
    assert.match(a, /^[A-Za-z0-9]{20,}$/);
    assert.notEqual(a, newNonce());
  });
});
