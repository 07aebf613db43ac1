import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

/**
 * Driving a real VS Code (code-server, installed by scripts/install-code-server.sh) from
 * playwright-core in Debian's Chromium. Loopback only; every wait is bounded; the server runs in
 * its own process group so stopping it stops the extension host and the engine under it.
 */

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export interface CodeServer {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

export function userSettings(userDataDir: string, settings: Record<string, unknown>): void {
  mkdirSync(join(userDataDir, 'User'), { recursive: true });
  writeFileSync(join(userDataDir, 'User', 'settings.json'), JSON.stringify(settings, null, 2));
}

export function installExtension(bin: string, dirs: { userData: string; extensions: string; env: NodeJS.ProcessEnv }, vsix: string): string {
  const r = spawnSync(bin, ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--install-extension', vsix], { encoding: 'utf8', timeout: 120_000, env: dirs.env });
  if (r.status !== 0) throw new Error(`code-server --install-extension ${vsix} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

export async function startCodeServer(bin: string, dirs: { userData: string; extensions: string; env: NodeJS.ProcessEnv }, folder: string): Promise<CodeServer> {
  const port = await freePort();
  const args = ['--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions, '--disable-telemetry', '--disable-update-check', '--disable-getting-started-override', folder];
  const child = spawn(bin, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: dirs.env });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`code-server exited (${child.exitCode}):\n${out}`);
    if (await httpOk(`${url}/healthz`)) break;
    if (Date.now() > deadline) throw new Error(`code-server did not listen on ${url} within 60 s:\n${out}`);
    await sleep(300);
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {
      return;
    }
    await Promise.race([exited, sleep(10_000)]);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return { url, process: child, output: () => out, stop };
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { timeout: 2000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 500);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs a command from the command palette by its title, as a user types it. */
export async function runCommand(page: Page, title: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.click();
}

/** Picks an item of the open quick pick by (part of) its label. */
export async function pickQuickItem(page: Page, label: string): Promise<void> {
  const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 30_000 });
  await row.click();
}

/** The texts of the notification toasts on screen now. */
export async function toasts(page: Page): Promise<string[]> {
  return page.locator('.notifications-toasts .notification-toast').allInnerTexts();
}

/** Waits until a notification toast's text matches; returns that text. Fails fast on an ARIES error toast. */
export async function waitForToast(page: Page, match: RegExp, timeoutMs: number, failOn = /ARIES: .*(failed|could not|not running|stopped unexpectedly)/): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const texts = await toasts(page);
    const hit = texts.find((t) => match.test(t));
    if (hit) return hit;
    const bad = texts.find((t) => failOn.test(t));
    if (bad) throw new Error(`error notification while waiting for ${match}: ${bad}`);
    if (Date.now() > deadline) throw new Error(`no notification matching ${match} within ${timeoutMs / 1000} s; on screen: ${JSON.stringify(texts)}`);
    await sleep(500);
  }
}

/**
 * Whether a notification matching `match` was shown: a toast on screen, or an entry of the
 * notification center (where a toast goes once it hides itself — on a busy machine a toast can
 * come and go between two looks). Polls for up to timeoutMs; returns the text or undefined.
 */
export async function notificationShown(page: Page, match: RegExp, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const toast = (await toasts(page)).find((t) => match.test(t));
    if (toast) return toast;
    await runCommand(page, 'Notifications: Show Notifications');
    const center = page.locator('.notifications-center .monaco-list-row');
    await center.first().waitFor({ state: 'visible', timeout: 5_000 }).catch(() => undefined);
    const listed = (await center.allInnerTexts()).find((t) => match.test(t));
    // Escape hides the center (the palette offers "Hide Notifications" only while it has focus).
    await page.keyboard.press('Escape');
    if (listed) return listed;
    if (Date.now() > deadline) return undefined;
    await sleep(1_000);
  }
}
