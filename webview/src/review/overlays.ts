import { el } from '../shared/bridge';
import type { AgreementResult, Step } from './protocol';
import { SHORTCUTS } from './shortcuts';

/**
 * What the detail pane shows instead of a trajectory (the keyboard help, the agreement table) and
 * the response editor that replaces a step's body: built here, placed and wired to the state by
 * main.ts.
 */

export function helpBox(): HTMLElement {
  const box = el('div', 'help');
  box.append(el('h2', '', 'Keyboard'));
  const table = el('table');
  for (const [keys, what] of SHORTCUTS) {
    const row = el('tr');
    row.append(el('td', 'keys', keys), el('td', '', what));
    table.append(row);
  }
  box.append(table, el('p', 'muted', 'Every action is saved at once. Press ? again or Esc to close.'));
  return box;
}

export function agreementBox(a: AgreementResult): HTMLElement {
  const box = el('div', 'help');
  box.append(el('h2', '', `Agreement${a.round ? ` — round ${a.round}` : ''}`));
  const table = el('table');
  for (const [strategy, v] of Object.entries(a.humanVsStrategy)) {
    const row = el('tr');
    row.append(el('td', 'keys', `human vs ${strategy}`), el('td', '', `${v.agreed}/${v.compared} agree${v.rate === null ? '' : ` (${(100 * v.rate).toFixed(0)}%)`}`));
    table.append(row);
  }
  for (const c of a.curators) {
    const row = el('tr');
    row.append(el('td', 'keys', `${c.a} vs ${c.b}`), el('td', '', `${c.items} shared items · observed ${(100 * c.observed).toFixed(0)}% · Cohen's κ ${c.kappa === null ? 'n/a' : c.kappa.toFixed(2)}`));
    table.append(row);
  }
  if (!table.children.length) box.append(el('p', 'muted', 'No decisions yet.'));
  box.append(table);
  return box;
}

/**
 * Puts an editor for `step`'s text into `card` (the step's body): Ctrl+Enter or Save calls
 * finish(true, text), Esc or Cancel finish(false, text). Keys typed in it go nowhere else.
 */
export function mountStepEditor(card: HTMLElement, step: Step, finish: (keep: boolean, text: string) => void): void {
  const area = document.createElement('vscode-textarea');
  area.setAttribute('rows', '8');
  area.setAttribute('aria-label', 'Edited response');
  area.value = step.text;
  const bar = el('div', 'edit-bar');
  const saveButton = document.createElement('vscode-button');
  saveButton.textContent = 'Save as curated step (Ctrl+Enter)';
  const cancel = document.createElement('vscode-button');
  cancel.setAttribute('secondary', '');
  cancel.textContent = 'Cancel (Esc)';
  bar.append(saveButton, cancel);
  card.replaceChildren(area, bar);
  saveButton.addEventListener('click', () => finish(true, area.value));
  cancel.addEventListener('click', () => finish(false, area.value));
  area.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) finish(true, area.value);
    if (e.key === 'Escape') finish(false, area.value);
    e.stopPropagation();
  });
  setTimeout(() => area.focus(), 0);
}
