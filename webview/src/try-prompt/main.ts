import { MAX_REFINEMENTS, type TryPromptCommand, type TryPromptEvent } from './protocol';
import './style.css';
import { el } from '../shared/bridge';
import { showControls } from '../shared/visible';

/**
 * Try a Prompt: ask the current model, then watch its first answer and each self-refinement
 * stream in. The host runs the engine job; this page only sends commands and shows text
 * (textContent only, never HTML).
 */
interface VsCodeApi {
  postMessage(message: TryPromptCommand): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const vscode = acquireVsCodeApi();

const app = document.getElementById('app') as HTMLElement;
const form = el('form');
const prompt = el('textarea');
prompt.placeholder = 'Ask the current model something, e.g. 17+25=';
prompt.setAttribute('aria-label', 'Prompt');
const refinements = el('input');
refinements.type = 'number';
refinements.min = '0';
refinements.max = String(MAX_REFINEMENTS);
refinements.value = '3';
refinements.setAttribute('aria-label', 'Self-refinements');
const ask = el('button', '', 'Ask');
ask.type = 'submit';
const stop = el('button', 'secondary', 'Stop');
stop.type = 'button';
stop.disabled = true;
const status = el('span', 'status');
const refLabel = el('label', '', 'refinements ');
refLabel.append(refinements);
const row = el('div', 'row');
row.append(ask, stop, refLabel, status);
form.append(prompt, row);
const output = el('div', 'output');
app.append(form, output);

const steps = new Map<number, { section: HTMLElement; text: HTMLPreElement }>();
let total = 0;

function stepTitle(k: number): string {
  return k === 0 ? 'First answer (y0)' : `Refinement ${k} (y${k})`;
}

function setRunning(running: boolean): void {
  ask.disabled = running;
  stop.disabled = !running;
  prompt.readOnly = running;
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = prompt.value.trim();
  if (!text) {
    status.textContent = 'Write a prompt first.';
    return;
  }
  const k = Math.max(0, Math.min(MAX_REFINEMENTS, Math.floor(Number(refinements.value) || 0)));
  vscode.postMessage({ type: 'ask', prompt: text, refinements: k });
});
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit();
});
stop.addEventListener('click', () => vscode.postMessage({ type: 'stop' }));

window.addEventListener('message', (event: MessageEvent<TryPromptEvent>) => {
  const m = event.data;
  switch (m.type) {
    case 'init':
      if (m.prompt) prompt.value = m.prompt;
      refinements.value = String(m.refinements);
      status.textContent = m.model ? `Current model: ${m.model}` : '';
      prompt.focus();
      break;
    case 'started':
      output.replaceChildren();
      steps.clear();
      total = m.refinements + 1;
      setRunning(true);
      status.textContent = 'Asking…';
      break;
    case 'step': {
      const section = el('section', 'step running');
      section.append(el('h3', '', stepTitle(m.step)));
      if (m.step > 0) {
        const seen = el('details');
        seen.append(el('summary', '', 'What the model was asked'), el('pre', '', m.prompt));
        section.append(seen);
      }
      const text = el('pre');
      section.append(text);
      output.append(section);
      steps.set(m.step, { section, text });
      status.textContent = `${stepTitle(m.step)} · ${m.step + 1}/${total}`;
      break;
    }
    case 'delta': {
      const s = steps.get(m.step);
      if (s) s.text.textContent += showControls(m.text);
      break;
    }
    case 'stepDone':
      steps.get(m.step)?.section.classList.remove('running');
      break;
    case 'finished': {
      setRunning(false);
      const last = steps.get(m.steps.length - 1);
      last?.section.classList.add('final');
      for (const [i, s] of steps) if (!s.text.textContent) s.text.textContent = showControls(m.steps[i] ?? '');
      status.textContent = `Done · ${m.model}`;
      break;
    }
    case 'stopped':
      setRunning(false);
      for (const s of steps.values()) s.section.classList.remove('running');
      status.textContent = m.message;
      break;
  }
});

vscode.postMessage({ type: 'ready' });
