import { el } from '../shared/bridge';
import { renderMarkdown } from '../shared/markdown';
import { wordDiff } from '../shared/word-diff';
import type { Step, Trajectory } from './protocol';

/** What the detail view shows besides the trajectory: the curator's half-made choice. */
export interface PendingChoice {
  chosen: number | null;
  rejected: number | null;
}

export interface DetailHandlers {
  onEdit(step: Step): void;
  onChoose(role: 'chosen' | 'rejected', step: Step): void;
}

/** Steps in display order: the model's y0…yK, each followed by its curated edits. */
export function displaySteps(t: Trajectory): Step[] {
  return [...t.steps].sort((a, b) => a.idx - b.idx || (a.origin === b.origin ? a.id - b.id : a.origin === 'model' ? -1 : 1));
}

export function stepLabel(s: Step, number: number): string {
  const what = s.idx === 0 ? 'first answer' : `refinement ${s.idx}`;
  return `${number} · ${s.origin === 'curator' ? `${what}, edited by ${s.curator ?? 'curator'}` : what}`;
}

function promptText(t: Trajectory): string {
  return typeof t.prompt === 'string' ? t.prompt : t.prompt.map((m) => (m.role === 'user' ? m.content : `${m.role}: ${m.content}`)).join('\n\n');
}

function scoreChips(s: Step): HTMLElement {
  const box = el('span', 'scores');
  for (const [name, score] of Object.entries(s.scores)) {
    if (name === 'verifier' || name === 'verifier:solution') {
      // 0/1 checks: the final answer (with the answer it read), or the whole worked solution
      const raw = score.raw as { answer?: string | null } | null;
      const ok = score.value === 1;
      const label = name === 'verifier' ? `verifier${raw?.answer ? ` (${raw.answer})` : ''}` : 'worked solution';
      const chip = el('span', `chip ${score.value === null ? '' : ok ? 'good' : 'bad'}`, `${score.value === null ? '?' : ok ? '✓' : '✗'} ${label}`);
      box.append(chip);
    } else {
      box.append(el('span', 'chip', `${name} ${score.value === null ? '–' : score.value.toFixed(3)}`));
    }
  }
  if (s.completionTokens !== null) box.append(el('span', 'chip muted', `${s.completionTokens} tok`));
  return box;
}

export function renderTrajectory(t: Trajectory, pending: PendingChoice, showDiff: boolean, handlers: DetailHandlers): HTMLElement {
  const root = el('div', 'detail');
  const header = el('div', 'detail-header');
  header.append(el('h2', '', `Trajectory #${t.id}`), el('span', 'muted', `round ${t.round} · prompt ${t.promptId}${t.stopReason ? ` · stopped: ${t.stopReason}` : ''}`));
  root.append(header);

  const prompt = el('section', 'prompt');
  prompt.append(el('h3', '', 'Prompt'));
  const body = el('div', 'markdown');
  body.append(renderMarkdown(promptText(t)));
  prompt.append(body);
  if (t.reference !== null) prompt.append(el('div', 'reference', `Reference answer: ${t.reference}`));
  root.append(prompt);

  root.append(renderSelections(t));

  const steps = displaySteps(t);
  const previousModel = new Map<number, string>();
  for (const s of t.steps) if (s.origin === 'model') previousModel.set(s.idx, s.text);
  steps.forEach((s, i) => {
    const number = i + 1;
    const card = el('section', 'step');
    card.dataset.stepId = String(s.id);
    const isChosen = t.effective?.chosenStepId === s.id;
    const isRejected = t.effective?.rejectedStepId === s.id;
    if (isChosen) card.classList.add('chosen');
    if (isRejected) card.classList.add('rejected');
    const head = el('div', 'step-head');
    head.append(el('span', 'step-label', stepLabel(s, number)));
    if (isChosen) head.append(el('span', 'badge chosen-badge', `chosen (${t.effective?.source === 'override' ? 'human' : 'auto'})`));
    if (isRejected) head.append(el('span', 'badge rejected-badge', `rejected (${t.effective?.source === 'override' ? 'human' : 'auto'})`));
    if (pending.chosen === s.id) head.append(el('span', 'badge pending', 'chosen? (pick rejected: Shift+number)'));
    if (pending.rejected === s.id) head.append(el('span', 'badge pending', 'rejected? (pick chosen: number)'));
    for (const sel of t.selections) {
      if (sel.chosenStepId === s.id) head.append(el('span', 'tag', `${sel.strategy}: chosen`));
      if (sel.rejectedStepId === s.id) head.append(el('span', 'tag', `${sel.strategy}: rejected`));
    }
    head.append(scoreChips(s));
    const actions = el('span', 'step-actions');
    const choose = el('button', 'link', `choose (${number <= 9 ? number : '–'})`);
    choose.addEventListener('click', () => handlers.onChoose('chosen', s));
    const reject = el('button', 'link', `reject (⇧${number <= 9 ? number : '–'})`);
    reject.addEventListener('click', () => handlers.onChoose('rejected', s));
    const edit = el('button', 'link', 'edit');
    edit.addEventListener('click', () => handlers.onEdit(s));
    actions.append(choose, reject, edit);
    head.append(actions);
    card.append(head);
    const content = el('div', 'step-body');
    const previous = s.origin === 'curator' ? previousModel.get(s.idx) : previousModel.get(s.idx - 1);
    if (showDiff && previous !== undefined) {
      const { fragment, stats } = wordDiff(previous, s.text);
      const diff = el('div', 'diff');
      diff.append(fragment);
      content.append(el('div', 'muted small', `diff against ${s.origin === 'curator' ? 'the original' : 'the previous step'}: +${stats.added} / −${stats.removed} words`), diff);
    } else {
      const md = el('div', 'markdown');
      md.append(renderMarkdown(s.text));
      content.append(md);
    }
    const seen = el('details', 'seen-prompt');
    seen.append(el('summary', '', 'prompt the model saw'), el('pre', '', s.prompt));
    content.append(seen);
    card.append(content);
    root.append(card);
  });

  if (t.overrides.length) {
    const history = el('section', 'history');
    history.append(el('h3', '', 'Decisions'));
    const list = el('ul');
    for (const o of t.overrides) {
      list.append(el('li', o.undoneAt ? 'undone' : '', `${o.createdAt.replace('T', ' ').slice(0, 19)} · ${o.curator}: ${o.action}${o.note ? ` — ${o.note}` : ''}${o.undoneAt ? ' (undone)' : ''}`));
    }
    history.append(list);
    root.append(history);
  }
  return root;
}

function renderSelections(t: Trajectory): HTMLElement {
  const box = el('section', 'selections');
  box.append(el('h3', '', 'Automatic selection'));
  const table = el('table');
  const number = new Map(displaySteps(t).map((s, i) => [s.id, i + 1]));
  for (const sel of t.selections) {
    const row = el('tr');
    const pick = sel.status === 'pair' ? `${number.get(sel.chosenStepId ?? -1) ?? '?'} over ${number.get(sel.rejectedStepId ?? -1) ?? '?'}` : 'skip';
    row.append(el('td', 'strategy', sel.strategy), el('td', sel.status, pick), el('td', 'reason', sel.reason), el('td', 'margin', sel.margin === null ? '' : `margin ${sel.margin.toFixed(2)}`));
    table.append(row);
  }
  if (!t.selections.length) box.append(el('p', 'muted', 'Not selected yet — run Select Pairs.'));
  else box.append(table);
  return box;
}
