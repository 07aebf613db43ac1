import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FrameLocator, Page } from 'playwright-core';
import { runCommand, sleep } from './workbench';

/**
 * The review panel and dashboard as a curator uses them in code-server: reached through the
 * webview's two iframes, driven by the keyboard only. Every wait is bounded.
 */

/** The content of the one open webview editor (close the others first: hidden ones keep their iframe). */
export function webview(page: Page): FrameLocator {
  return page.frameLocator('iframe.webview').frameLocator('iframe#active-frame');
}

export const THEMES = { dark: 'Default Dark Modern', light: 'Default Light Modern' } as const;
export type Theme = keyof typeof THEMES;

/**
 * Switches the colour theme as a user does (Preferences: Color Theme, which writes
 * workbench.colorTheme to the user settings) and waits until the workbench and, when given, the
 * webview have switched. (code-server here does not apply a settings.json written from outside
 * until the window reloads, so the test does not write the file itself.)
 */
export async function setTheme(page: Page, userDataDir: string, theme: Theme, view?: FrameLocator): Promise<void> {
  await runCommand(page, 'Preferences: Color Theme');
  await page.locator('.quick-input-widget .quick-input-box input').fill(THEMES[theme]);
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: THEMES[theme] }).first().click();
  await page.locator(`.monaco-workbench.${theme === 'dark' ? 'vs-dark' : 'vs'}`).waitFor({ state: 'attached', timeout: 30_000 });
  if (view) await view.locator(`body.vscode-${theme}`).waitFor({ state: 'attached', timeout: 30_000 });
  // VS Code keeps the choice in the user settings (it drops the key when the theme is the default one).
  const file = join(userDataDir, 'User', 'settings.json');
  const saved = (): boolean => {
    const text = readFileSync(file, 'utf8');
    return text.includes(`"workbench.colorTheme": "${THEMES[theme]}"`) || !text.includes('"workbench.colorTheme"');
  };
  const deadline = Date.now() + 10_000;
  while (!saved()) {
    if (Date.now() > deadline) throw new Error(`${file} does not set workbench.colorTheme to ${THEMES[theme]}:\n${readFileSync(file, 'utf8')}`);
    await sleep(100);
  }
  await sleep(500); // the webview repaints with the new variables
}

/** Waits until the review's status bar text matches. */
export async function waitForProgress(view: FrameLocator, match: RegExp, timeoutMs = 20_000): Promise<string> {
  const progress = view.locator('.progress-text', { hasText: match });
  try {
    await progress.waitFor({ state: 'visible', timeout: timeoutMs });
  } catch (err) {
    const now = await view.locator('.statusbar').innerText({ timeout: 2000 }).catch(() => '?');
    throw new Error(`the review's status bar did not match ${match} within ${timeoutMs / 1000} s; it says "${now}"`, { cause: err });
  }
  return progress.innerText();
}

/** Waits until the review's message (status bar, right) says `text`. */
export async function waitForMessage(view: FrameLocator, text: string, timeoutMs = 20_000): Promise<void> {
  try {
    await view.locator('.statusbar .message', { hasText: text }).waitFor({ state: 'visible', timeout: timeoutMs });
  } catch (err) {
    const now = await view.locator('.statusbar').innerText({ timeout: 2000 }).catch(() => '?');
    throw new Error(`the review did not say "${text}" within ${timeoutMs / 1000} s; its status bar says "${now}"`, { cause: err });
  }
}

export interface Shown {
  id: number;
  /** Model steps and curated edits shown (the keys 1…9 number them). */
  steps: number;
  /** Each strategy's automatic selection: true when it picked a pair. */
  selections: Record<string, boolean>;
}

/** Waits until the detail shows the trajectory selected in the list (and not `previous`), and reads it. */
export async function shownTrajectory(view: FrameLocator, previous: number | null, timeoutMs = 20_000): Promise<Shown> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const heading = await view.locator('.detail-header h2').innerText({ timeout: 5000 }).catch(() => '');
    const selected = await view.locator('.list-row.selected .row-id').innerText({ timeout: 1000 }).catch(() => '');
    const id = Number(/#(\d+)/.exec(heading)?.[1] ?? NaN);
    if (Number.isInteger(id) && selected === `#${id}` && id !== previous) {
      const steps = await view.locator('.detail section.step').count();
      const selections: Record<string, boolean> = {};
      for (const row of await view.locator('.selections tr').all()) {
        const strategy = (await row.locator('td.strategy').innerText()).trim();
        selections[strategy] = (await row.locator('td.pair').count()) > 0;
      }
      return { id, steps, selections };
    }
    if (Date.now() > deadline) throw new Error(`the review did not show the selected trajectory within ${timeoutMs / 1000} s (heading "${heading}", selected row "${selected}", previous #${previous})`);
    await sleep(150);
  }
}

export type Decision = 'accept' | 'swap' | 'tie' | 'discard' | 'pair';

export interface Decided {
  trajectoryId: number;
  action: Decision;
  keys: string[];
  /** Whether the decision resolves to a pair (exported): swap, pair, accept of a selected pair. */
  pair: boolean;
  /** Accept, undone with u, before this decision. */
  undid?: boolean;
}

/**
 * A mix of decisions that each apply to the trajectory shown: accept, tie and discard always; a
 * pair (last step over the first, by number) when it has two steps or more; swap when the exported
 * strategy picked a pair. Takes the valid action used least so far, the rarer kinds first.
 */
export function pickDecision(shown: Shown, strategy: string, counts: Map<Decision, number>): { action: Decision; keys: string[]; pair: boolean } {
  const selectedPair = shown.selections[strategy] === true;
  const valid: Decision[] = ['swap', 'pair', 'accept', 'tie', 'discard'].filter((a) => (a === 'swap' ? selectedPair : a === 'pair' ? shown.steps >= 2 : true)) as Decision[];
  const action = valid.reduce((best, a) => ((counts.get(a) ?? 0) < (counts.get(best) ?? 0) ? a : best));
  const keys = { accept: ['Enter'], swap: ['s'], tie: ['t'], discard: ['d'], pair: [`Digit${Math.min(shown.steps, 9)}`, 'Shift+Digit1'] }[action];
  return { action, keys, pair: action === 'pair' || action === 'swap' || (action === 'accept' && selectedPair) };
}

/**
 * Labels `n` trajectories of the "All" list from the top, by keyboard: one decision each (j moves
 * on), and on the `undoAt`-th an accept, u (undo), then discard. Waits for each decision to be
 * saved (the status bar's count and message) before the next key.
 */
export async function labelByKeyboard(page: Page, view: FrameLocator, options: { n: number; undoAt: number; strategy: string; log: (m: string) => void }): Promise<Decided[]> {
  const counts = new Map<Decision, number>();
  const decided: Decided[] = [];
  let previous: number | null = null;
  for (let i = 0; i < options.n; i++) {
    if (i > 0) await page.keyboard.press('j');
    const shown = await shownTrajectory(view, previous);
    previous = shown.id;
    if (i === options.undoAt) {
      await page.keyboard.press('Enter');
      await waitForMessage(view, `Saved: accept on #${shown.id}`);
      await waitForProgress(view, new RegExp(`: ${i + 1} reviewed of`));
      await page.keyboard.press('u');
      await waitForMessage(view, `Undone your last decision on #${shown.id}`);
      await waitForProgress(view, new RegExp(`: ${i} reviewed of`));
      await page.keyboard.press('d');
      await waitForMessage(view, `Saved: discard on #${shown.id}`);
      await waitForProgress(view, new RegExp(`: ${i + 1} reviewed of`));
      decided.push({ trajectoryId: shown.id, action: 'discard', keys: ['Enter', 'u', 'd'], pair: false, undid: true });
      counts.set('discard', (counts.get('discard') ?? 0) + 1);
      options.log(`#${shown.id}: Enter, u, d (accept, undone, discard)`);
      continue;
    }
    const pick = pickDecision(shown, options.strategy, counts);
    for (const key of pick.keys) await page.keyboard.press(key);
    await waitForMessage(view, `Saved: ${pick.action} on #${shown.id}`);
    await waitForProgress(view, new RegExp(`: ${i + 1} reviewed of`));
    decided.push({ trajectoryId: shown.id, ...pick });
    counts.set(pick.action, (counts.get(pick.action) ?? 0) + 1);
    options.log(`#${shown.id} (${shown.steps} steps, ${JSON.stringify(shown.selections)}): ${pick.keys.join(', ')} → ${pick.action}`);
  }
  return decided;
}

/** Closes every editor, then opens a webview panel from the palette and waits for its content. */
export async function openWebview(page: Page, command: string, ready: string, timeoutMs = 60_000): Promise<FrameLocator> {
  await runCommand(page, 'View: Close All Editors');
  await page.locator('iframe.webview').waitFor({ state: 'detached', timeout: 15_000 }).catch(() => undefined);
  await runCommand(page, command);
  const view = webview(page);
  await view.locator(ready).first().waitFor({ state: 'visible', timeout: timeoutMs });
  return view;
}
