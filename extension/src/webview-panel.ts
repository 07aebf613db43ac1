import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import { webviewHtml } from './webview-html';

/**
 * An editor-side panel that runs the webview bundle dist/webview/<name>.js (and its .css): scripts
 * on, resources limited to dist/webview, the strict CSP of webview-html.ts.
 */
export function createWebviewPanel(extensionUri: vscode.Uri, name: string, viewType: string, title: string, column = vscode.ViewColumn.Beside): vscode.WebviewPanel {
  const root = vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
  const panel = vscode.window.createWebviewPanel(viewType, title, { viewColumn: column, preserveFocus: false }, { enableScripts: true, localResourceRoots: [root], retainContextWhenHidden: true });
  const webview = panel.webview;
  const css = vscode.Uri.joinPath(root, `${name}.css`);
  webview.html = webviewHtml({
    title,
    cspSource: webview.cspSource,
    scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(root, `${name}.js`)).toString(),
    styleUris: existsSync(css.fsPath) ? [webview.asWebviewUri(css).toString()] : [],
  });
  return panel;
}
