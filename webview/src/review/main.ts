import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-textarea/index.js';
import '@vscode-elements/elements/dist/vscode-progress-bar/index.js';
import '../shared/base.css';
import './style.css';
import { el, HostBridge } from '../shared/bridge';
import { displaySteps, type PendingChoice, renderTrajectory } from './detail';
import { TrajectoryList } from './list';
import type { ListItem, ListPage, OverrideAction, ReviewFilter, ReviewNotification, ReviewRequests, Step, Trajectory } from './protocol';
import { agreementBox, helpBox, mountStepEditor } from './overlays';
import { type KeyAction, keyAction } from './shortcuts';

/**
 * The review panel: a virtualised list of trajectories and the selected one in full. Every
 * decision is sent to the host at once and saved by the engine before the view updates.
 */
const host = new HostBridge<ReviewRequests, ReviewNotification>();

interface ViewState {
  round: number | null;
  filter: ReviewFilter;
  search: string;
  showDiff: boolean;
  selectedId: number | null;
}

const state: ViewState = { round: null, filter: 'needs-review', search: '', showDiff: false, selectedId: null, ...host.getState<ViewState>() };
let current: Trajectory | null = null;
let pending: PendingChoice = { chosen: null, rejected: null };
let editing: Step | null = null;
/**
 * Actions run one after another, in the order the keys were pressed: a fast curator's next key
 * acts on the trajectory the previous decision advanced to, never on a stale one.
 */
let queue: Promise<void> = Promise.resolve();
let queued = 0;
function enqueue(work: () => Promise<void> | void): void {
  queued++;
  queue = queue
    .then(work)
    .catch((err: unknown) => say((err as Error).message, 'error'))
    .finally(() => {
      queued--;
    });
}
/** Trajectories decided in this session, newest last: undo goes back through them. */
const decided: number[] = [];

const app = document.getElementById('app') as HTMLElement;
const toolbar = el('div', 'toolbar');
const main = el('div', 'main');
const listPane = el('div', 'list-pane');
const detailPane = el('div', 'detail-pane');
detailPane.tabIndex = -1;
const status = el('div', 'statusbar');
const progressText = el('span', 'progress-text');
const message = el('span', 'message');
status.append(progressText, message);
main.append(listPane, detailPane);
app.append(toolbar, main, status);

const roundSelect = document.createElement('vscode-single-select');
roundSelect.setAttribute('aria-label', 'Round');
const filterSelect = document.createElement('vscode-single-select');
filterSelect.setAttribute('aria-label', 'Filter');
const FILTERS: [ReviewFilter, string][] = [
  ['needs-review', 'Needs review'], ['auto-selected', 'Auto-selected'], ['skipped', 'Skipped'], ['overridden', 'Overridden'],
  ['disagreement', 'Strategies disagree'], ['low-margin', 'Low margin'], ['all', 'All'],
];
for (const [value, label] of FILTERS) {
  const o = document.createElement('vscode-option');
  o.setAttribute('value', value);
  o.textContent = label;
  if (value === state.filter) o.setAttribute('selected', '');
  filterSelect.append(o);
}
const search = document.createElement('vscode-textfield');
search.setAttribute('placeholder', 'Search prompts and answers ( / )');
search.setAttribute('aria-label', 'Search');
search.value = state.search;
const diffToggle = document.createElement('vscode-button');
diffToggle.setAttribute('secondary', '');
diffToggle.textContent = 'Diff (v)';
const helpButton = document.createElement('vscode-button');
helpButton.setAttribute('secondary', '');
helpButton.textContent = 'Shortcuts (?)';
toolbar.append(roundSelect, filterSelect, search, diffToggle, helpButton);

const list = new TrajectoryList(listPane, (offset, limit, afterSeq) => fetchPage(offset, limit, afterSeq), (item) => open(item));

function fetchPage(offset: number, limit: number, afterSeq?: number): Promise<ListPage> {
  return host.request('list', { round: state.round, filter: state.filter, search: state.search || undefined, offset, limit, afterSeq });
}

function save(): void {
  host.setState(state);
}

function say(text: string, kind: 'info' | 'error' = 'info'): void {
  message.textContent = text;
  message.className = `message ${kind}`;
}

async function reload(keepSelection = false): Promise<void> {
  const page = await fetchPage(0, 200);
  progressText.textContent = page.round === null ? 'No rounds yet — run Generate Trajectories first.' : `Round ${page.round}: ${page.reviewed} reviewed of ${page.all} · ${page.total} shown`;
  if (keepSelection) {
    await list.refresh();
    return;
  }
  list.reset(page);
  if (page.items.length) await list.select(0);
  else renderEmpty();
}

function renderEmpty(): void {
  current = null;
  const box = el('div', 'empty');
  box.append(el('h2', '', 'Nothing here'), el('p', 'muted', state.search ? 'No trajectory matches the search.' : 'No trajectory in this group. Try another filter.'));
  detailPane.replaceChildren(box);
}

async function open(item: ListItem): Promise<void> {
  state.selectedId = item.id;
  save();
  pending = { chosen: null, rejected: null };
  editing = null;
  try {
    show(await host.request('get', { id: item.id }));
  } catch (err) {
    say((err as Error).message, 'error');
  }
}

function show(t: Trajectory): void {
  current = t;
  const view = renderTrajectory(t, pending, state.showDiff, { onEdit: startEdit, onChoose: (role, s) => enqueue(() => choose(role, s)) });
  view.append(actionBar());
  detailPane.replaceChildren(view);
  if (editing) mountEditor(editing);
}

function actionBar(): HTMLElement {
  const bar = el('div', 'actions');
  const add = (label: string, action: () => void, primary = false): void => {
    const b = document.createElement('vscode-button');
    if (!primary) b.setAttribute('secondary', '');
    b.textContent = label;
    b.addEventListener('click', action);
    bar.append(b);
  };
  add('Accept (Enter)', () => enqueue(() => decide('accept')), true);
  add('Swap (s)', () => enqueue(() => decide('swap')));
  add('Tie (t)', () => enqueue(() => decide('tie')));
  add('Discard (d)', () => enqueue(() => decide('discard')));
  add('Undo (u)', () => enqueue(undo));
  return bar;
}

async function run<T>(label: string, work: () => Promise<T>): Promise<T | undefined> {
  try {
    const result = await work();
    say(label);
    return result;
  } catch (err) {
    say((err as Error).message, 'error');
    return undefined;
  }
}

async function decide(action: OverrideAction, chosenStepId?: number, rejectedStepId?: number): Promise<void> {
  if (!current) return;
  const t = current;
  const updated = await run(`Saved: ${action} on #${t.id}`, () => host.request('override', { trajectoryId: t.id, action, chosenStepId, rejectedStepId }));
  if (!updated) return;
  decided.push(t.id);
  pending = { chosen: null, rejected: null };
  show(updated);
  await reload(true);
  if (state.filter === 'needs-review') await advance();
}

async function advance(): Promise<void> {
  const next = Math.min(list.selectedIndex, list.count - 1);
  if (next >= 0) await list.select(next);
  else renderEmpty();
}

/** Undoes the last decision made here (and shows that trajectory), else the latest on this one. */
async function undo(): Promise<void> {
  const target = decided.pop() ?? current?.id;
  if (target === undefined) return;
  const updated = await run(`Undone your last decision on #${target}`, () => host.request('undo', { trajectoryId: target }));
  if (!updated) return;
  await reload(true);
  if (!(await list.selectById(updated.id))) show(updated);
}

async function choose(role: 'chosen' | 'rejected', step: Step): Promise<void> {
  if (!current) return;
  pending = { ...pending, [role]: step.id };
  if (pending.chosen !== null && pending.rejected !== null) {
    if (pending.chosen === pending.rejected) {
      say('chosen and rejected must be different steps', 'error');
      pending = { chosen: null, rejected: null };
    } else {
      await decide('pair', pending.chosen, pending.rejected);
      return;
    }
  }
  show(current);
}

function startEdit(step: Step): void {
  editing = step;
  if (current) show(current);
}

function mountEditor(step: Step): void {
  const card = detailPane.querySelector<HTMLElement>(`[data-step-id="${step.id}"] .step-body`);
  if (!card) return;
  mountStepEditor(card, step, (keep, text) =>
    void (async () => {
      editing = null;
      if (keep && current && text !== step.text) {
        const updated = await run(`Saved edit of step ${step.id} as a new curated step`, () => host.request('edit', { stepId: step.id, text }));
        if (updated) show(updated);
        await reload(true);
      } else if (current) show(current);
    })(),
  );
}

function showHelp(): void {
  detailPane.replaceChildren(helpBox());
}

async function showAgreement(): Promise<void> {
  const a = await run('Agreement computed', () => host.request('agreement', { round: state.round }));
  if (a) detailPane.replaceChildren(agreementBox(a));
}

document.addEventListener('keydown', (e) => {
  if (editing) return;
  const target = e.target as HTMLElement;
  if (target.closest('vscode-textfield, vscode-textarea, input, textarea')) {
    if (e.key === 'Escape') detailPane.focus();
    return;
  }
  const action = keyAction(e);
  if (!action) return;
  e.preventDefault();
  enqueue(() => perform(action));
});

async function perform(action: KeyAction): Promise<void> {
  const steps = current ? displaySteps(current) : [];
  switch (action.kind) {
    case 'next':
      await list.select(list.selectedIndex + 1);
      break;
    case 'previous':
      await list.select(list.selectedIndex - 1);
      break;
    case 'accept':
    case 'swap':
    case 'tie':
    case 'discard':
      await decide(action.kind);
      break;
    case 'undo':
      await undo();
      break;
    case 'choose': {
      const step = steps[action.number - 1];
      if (step) await choose(action.role, step);
      else say(`there is no step ${action.number}`, 'error');
      break;
    }
    case 'edit': {
      const step = current?.effective ? steps.find((s) => s.id === current?.effective?.chosenStepId) : steps[steps.length - 1];
      if (step) startEdit(step);
      break;
    }
    case 'diff':
      state.showDiff = !state.showDiff;
      save();
      if (current) show(current);
      break;
    case 'search':
      (search as HTMLElement).focus();
      break;
    case 'help':
      if (detailPane.querySelector('.help')) {
        if (current) show(current);
      } else showHelp();
      break;
    case 'agreement':
      await showAgreement();
      break;
    case 'escape':
      pending = { chosen: null, rejected: null };
      if (current) show(current);
      break;
    case 'next-filter':
    case 'previous-filter': {
      const i = FILTERS.findIndex(([f]) => f === state.filter);
      const next = FILTERS[(i + (action.kind === 'next-filter' ? 1 : FILTERS.length - 1)) % FILTERS.length] as [ReviewFilter, string];
      setFilter(next[0]);
      await reload();
      say(`Filter: ${next[1]}`);
      break;
    }
  }
}

/** Shows the filter in the dropdown too (keyboard and mouse stay in step). */
function setFilter(filter: ReviewFilter): void {
  state.filter = filter;
  save();
  filterSelect.value = filter;
}

filterSelect.addEventListener('change', () => {
  const value = filterSelect.value as ReviewFilter;
  if (value === state.filter) return;
  state.filter = value;
  save();
  enqueue(() => reload());
});
roundSelect.addEventListener('change', () => {
  const v = roundSelect.value;
  state.round = v === 'latest' ? null : Number(v);
  save();
  void reload();
});
let searchTimer: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    state.search = search.value;
    save();
    void reload();
  }, 250);
});
diffToggle.addEventListener('click', () => {
  state.showDiff = !state.showDiff;
  save();
  if (current) show(current);
});
helpButton.addEventListener('click', showHelp);

host.onNotification((n) => {
  if (n.kind === 'init') {
    roundSelect.replaceChildren();
    const latest = document.createElement('vscode-option');
    latest.setAttribute('value', 'latest');
    latest.textContent = 'Newest round';
    roundSelect.append(latest);
    for (const r of n.rounds) {
      const o = document.createElement('vscode-option');
      o.setAttribute('value', String(r));
      o.textContent = `Round ${r}`;
      if (state.round === r) o.setAttribute('selected', '');
      roundSelect.append(o);
    }
    say(`Reviewing as ${n.curator}; export uses overrides over the "${n.strategy}" strategy.`);
    const focus = n.focusTrajectory;
    enqueue(async () => {
      await reload();
      if (focus !== undefined && current?.id !== focus && !(await list.selectById(focus))) show(await host.request('get', { id: focus }));
    });
  } else if (n.kind === 'changed' && queued === 0) {
    void reload(true);
  }
});
host.ready();
