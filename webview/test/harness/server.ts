import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve } from 'node:path';
import { createMessageConnection, type MessageConnection, StreamMessageReader, StreamMessageWriter } from 'vscode-languageserver-protocol/node';
import { DashboardHost, ReviewHost } from '../../../extension/src/review/review-host';
import { webviewHtml } from '../../../extension/src/webview-html';
import { OpenProjectRequest, StateChangedNotification } from '../../../engine/src/protocol/engine';

/**
 * Serves the real webview bundles in a plain browser, wired to a real engine (`aries serve`)
 * through the same host code the extension uses (ReviewHost / DashboardHost). Only VS Code's
 * postMessage is replaced, by HTTP (webview/test/harness/shim.js).
 */
const ROOT = resolve(__dirname, '../../..');
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json', '.ttf': 'font/ttf', '.html': 'text/html' };

export interface Harness {
  url: string;
  engine: MessageConnection;
  close(): Promise<void>;
}

export async function startHarness(projectRoot: string, curator = 'tester'): Promise<Harness> {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'engine/src/cli/main.ts'), 'serve'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const engine = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
  engine.onNotification('window/logMessage', () => undefined);
  engine.listen();
  await engine.sendRequest('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
  await engine.sendRequest(OpenProjectRequest.type, { root: projectRoot });
  const outbox = new Map<string, unknown[]>([['review', []], ['dashboard', []]]);
  const review = new ReviewHost(engine, () => curator, (m) => outbox.get('review')?.push(m));
  const dashboard = new DashboardHost(engine, (m) => outbox.get('dashboard')?.push(m));
  engine.onNotification(StateChangedNotification.type, () => {
    review.notify({ kind: 'changed' });
    dashboard.notify({ kind: 'changed' });
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const view = (req.headers.referer ? new URL(req.headers.referer).pathname : url.pathname).includes('dashboard') ? 'dashboard' : 'review';
    const reply = (status: number, type: string, body: string | Buffer): void => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (url.pathname === '/review' || url.pathname === '/dashboard') {
      const origin = `http://${req.headers.host}`;
      const styles = [`/dist/webview${url.pathname}.css`, '/webview/test/harness/themes.css'];
      return reply(200, 'text/html', webviewHtml({ cspSource: origin, connectSrc: origin, scriptUri: `/dist/webview${url.pathname}.js`, styleUris: styles, title: `ARIES ${url.pathname.slice(1)}`, preludeUri: '/webview/test/harness/shim.js' }));
    }
    if (url.pathname === '/message' && req.method === 'POST') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const message = JSON.parse(body) as { type?: string };
        const host = view === 'dashboard' ? dashboard : review;
        const done = (): void => {
          const queued = outbox.get(view) ?? [];
          outbox.set(view, []);
          reply(200, 'application/json', JSON.stringify(queued));
        };
        if (message.type === 'ready') {
          if (view === 'review') review.notify({ kind: 'init', curator, strategy: 'verifier', rounds: [1] });
          else dashboard.notify({ kind: 'init' });
          done();
        } else void host.handle(message).then(done);
      });
      return undefined;
    }
    if (url.pathname === '/poll') {
      const queued = outbox.get(view) ?? [];
      outbox.set(view, []);
      return reply(200, 'application/json', JSON.stringify(queued));
    }
    const file = normalize(join(ROOT, decodeURIComponent(url.pathname)));
    const allowed = ['dist/webview/', 'webview/test/harness/'].some((p) => file.startsWith(join(ROOT, p)));
    if (!allowed) return reply(404, 'text/plain', 'not found');
    try {
      return reply(200, TYPES[extname(file)] ?? 'application/octet-stream', readFileSync(file));
    } catch {
      return reply(404, 'text/plain', 'not found');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    engine,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await engine.sendRequest('shutdown').catch(() => undefined);
      engine.dispose();
      // The engine ends on SIGTERM; if it has not after 5 s, it is killed, so a test never hangs here.
      const exited = new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      child.kill();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killer);
    },
  };
}
