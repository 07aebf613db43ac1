import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { type Browser, chromium, type Page } from 'playwright-core';
import { ExportRequest } from '../../engine/src/protocol/engine';
import type { DatasetRow } from '../../engine/src/protocol/trainer';
import { reviewProject } from './support/review-project';
import { type Harness, startHarness } from './harness/server';

/**
 * The review panel and dashboard in a real browser (Debian Chromium), on the real bundles, talking
 * through the extension's own host code to a real engine and SQLite file.
 */
const ARTIFACTS = resolve(__dirname, '../../artifacts/webview');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = !existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : !existsSync(resolve(__dirname, '../../dist/webview/review.js')) ? 'dist/webview/review.js is missing: run npm run build' : undefined;

describe('review webview in Chromium', { skip }, () => {
  let project: { root: string; dispose: () => void };
  let harness: Harness;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const errors: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    project = await reviewProject(12);
    harness = await startHarness(project.root, 'ana');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  });

  /** Each test gets a fresh browser context: its own sessionStorage (the webview's saved state). */
  const freshPage = async (): Promise<void> => {
    await page?.context().close();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    page.on('pageerror', (e) => errors.push(e.message));
  };

  after(async () => {
    await browser?.close();
    await harness?.close();
    project?.dispose();
  });

  const waitForProgress = async (re: RegExp): Promise<string> => {
    try {
      await page.waitForFunction((src) => new RegExp(src).test(document.querySelector('.progress-text')?.textContent ?? ''), re.source, { timeout: 10_000 });
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS, 'failure.png') });
      throw new Error(`waited for ${re}; the status bar says "${await page.textContent('.statusbar')}"`, { cause: err });
    }
    return (await page.textContent('.progress-text')) ?? '';
  };

  it('renders hostile model text without running any of it', async () => {
    await freshPage();
    await page.goto(`${harness.url}/review?theme=dark`);
    await page.evaluate(() => {
      (window as unknown as { __violations: string[] }).__violations = [];
      document.addEventListener('securitypolicyviolation', (e) => (window as unknown as { __violations: string[] }).__violations.push(e.violatedDirective));
    });
    await waitForProgress(/reviewed of/);
    // Walk every trajectory in both views (markdown and word diff).
    for (let i = 0; i < 16; i++) {
      await page.keyboard.press('j');
      await page.waitForTimeout(60);
      if (i % 2 === 0) await page.keyboard.press('v');
    }
    await page.goto(`${harness.url}/review?theme=dark`);
    await waitForProgress(/reviewed of/);
    const search = page.locator('vscode-textfield');
    await search.click();
    await page.keyboard.type('onerror');
    await page.waitForTimeout(600);
    await page.keyboard.press('Escape');
    const report = await page.evaluate(() => {
      const app = document.getElementById('app') as HTMLElement;
      const all = [...app.querySelectorAll('*')];
      return {
        xss: (window as unknown as { __xss?: number }).__xss ?? null,
        scripts: app.querySelectorAll('script, iframe, object, embed, style, form').length,
        handlers: all.filter((n) => [...n.attributes].some((a) => a.name.startsWith('on'))).length,
        jsLinks: all.filter((n) => /^\s*javascript:/i.test(n.getAttribute('href') ?? '') || /^\s*javascript:/i.test(n.getAttribute('src') ?? '')).length,
        text: app.textContent ?? '',
      };
    });
    assert.equal(report.xss, null, 'a payload ran');
    assert.deepEqual([report.scripts, report.handlers, report.jsLinks], [0, 0, 0]);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    assert.ok(report.text.includes('onerror'), 'the payload is shown as text');
    await page.screenshot({ path: join(ARTIFACTS, 'review-xss-dark.png') });
  });

  it('shows bidirectional overrides and markdown images visibly, as inert text', async () => {
    await freshPage();
    await page.goto(`${harness.url}/review?theme=dark`);
    await waitForProgress(/reviewed of/);
    const search = page.locator('vscode-textfield');
    await search.click();
    await page.keyboard.type('chart of the sum');
    await waitForProgress(/· 1 shown/);
    await page.keyboard.press('Escape');
    await page.keyboard.press('j');
    await page.waitForFunction(() => (document.getElementById('app')?.textContent ?? '').includes('chart of the sum'), undefined, { timeout: 10_000 });
    const seen = await page.evaluate(() => {
      const app = document.getElementById('app') as HTMLElement;
      return { text: app.textContent ?? '', images: app.querySelectorAll('img').length, spans: app.querySelectorAll('.md-image').length };
    });
    assert.ok(seen.text.includes('The sum is ⟨U+202E⟩8 si rewsna ehT⟨U+202C⟩'), `the override is shown as a mark: ${seen.text.slice(0, 400)}`);
    assert.doesNotMatch(seen.text, /[\u202A-\u202E\u2066-\u2069]/, 'no bidi control reaches the screen');
    assert.ok(seen.text.includes('![a chart of the sum](https://example.com/chart.png)'), 'the image is shown as its markdown, alt text included');
    assert.equal(seen.images, 0);
    assert.ok(seen.spans >= 1);
    await page.screenshot({ path: join(ARTIFACTS, 'review-deceptive-text.png') });
  });

  it('labels 10 trajectories by keyboard, edits one response, and survives a reload', async () => {
    await freshPage();
    await page.goto(`${harness.url}/review?theme=light`);
    const before = await waitForProgress(/0 reviewed of 12/);
    assert.match(before, /Round 1: 0 reviewed of 12/);
    // needs-review advances to the next trajectory after each decision.
    const keys: string[][] = [['Enter'], ['s'], ['t'], ['d'], ['Digit2', 'Shift+Digit1'], ['Enter'], ['Enter', 'u', 'd'], ['s'], ['Digit1', 'Shift+Digit2'], ['Enter']];
    let n = 0;
    for (const combo of keys) {
      for (const k of combo) {
        await page.keyboard.press(k);
        await page.waitForTimeout(150);
      }
      n++;
      if (combo.includes('u')) continue;
      await waitForProgress(new RegExp(`${n} reviewed of 12`));
    }
    await waitForProgress(/10 reviewed of 12/);
    // Edit the chosen response of the next trajectory and save it with Ctrl+Enter.
    await page.keyboard.press('e');
    const area = page.locator('vscode-textarea');
    await area.waitFor();
    await page.evaluate(() => {
      const a = document.querySelector('vscode-textarea') as HTMLElement & { value: string };
      a.value = 'curated answer: 99 + 1 = 100. #### 100';
    });
    await area.press('Control+Enter');
    await page.waitForSelector('text=edited by ana');
    await page.screenshot({ path: join(ARTIFACTS, 'review-light.png') });
    await page.reload();
    await waitForProgress(/10 reviewed of 12/);

    const db = new Database(join(project.root, '.aries/aries.db'), { readonly: true });
    try {
      const live = db.prepare("SELECT action, COUNT(*) AS n FROM overrides WHERE undone_at IS NULL AND curator = 'ana' GROUP BY action ORDER BY action").all() as { action: string; n: number }[];
      assert.deepEqual(Object.fromEntries(live.map((r) => [r.action, r.n])), { accept: 3, discard: 2, pair: 2, swap: 2, tie: 1 });
      assert.equal((db.prepare('SELECT COUNT(*) AS n FROM overrides WHERE undone_at IS NOT NULL').get() as { n: number }).n, 1);
      const edit = db.prepare("SELECT text, edited_from_step_id FROM steps WHERE origin = 'curator'").get() as { text: string; edited_from_step_id: number };
      assert.equal(edit.text, 'curated answer: 99 + 1 = 100. #### 100');
      assert.ok(edit.edited_from_step_id > 0);
    } finally {
      db.close();
    }
    const exported = await harness.engine.sendRequest(ExportRequest.type, { jobId: 'export-1' });
    const rows = readFileSync(exported.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DatasetRow);
    assert.equal(rows.filter((r) => r.source === 'override').length, 2 * (3 + 2 + 2), 'accept, swap and pair give a direct and a refine row each');
    assert.equal(exported.counts.overridden, 10);
  });

  it('draws the dashboard', async () => {
    await freshPage();
    for (const theme of ['dark', 'light']) {
      await page.goto(`${harness.url}/dashboard?theme=${theme}`);
      await page.waitForSelector('.rounds-table');
      await page.waitForSelector('canvas');
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-${theme}.png`), fullPage: true });
    }
    // This project has trajectories but no evaluation or training yet: the two length charts draw, the rest say so.
    assert.equal(await page.locator('canvas').count(), 2);
    assert.equal(await page.locator('text=no data yet').count(), 4);
    assert.deepEqual(errors, []);
  });
});

