import { readFileSync } from 'node:fs';
import { badInput } from '../errors';
import type { ChatMessage, PromptInput } from '../generation/backend';
import { defaultTemplatePath } from '../paths';

/**
 * The refinement prompt: how a question x and the previous answer y become the next prompt.
 * The text lives in engine/templates/refinement.json, the one file the engine, the trainer
 * (aries_trainer/refinement.py) and the bundled-model builder read. Placeholders {question} and
 * {previous} are replaced in one pass, so a question containing "{previous}" is left alone.
 */
export interface RefinementTemplate {
  path: string;
  template: string;
}

const PLACEHOLDER = /\{(question|previous)\}/g;

export function loadTemplate(path: string = defaultTemplatePath()): RefinementTemplate {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw badInput(`${path}: cannot read the refinement template (${(err as Error).message})`, 'fix the JSON or point aries.refinementTemplate at a valid file');
  }
  const template = typeof data === 'object' && data !== null ? (data as { template?: unknown }).template : undefined;
  if (typeof template !== 'string' || !template.includes('{question}') || !template.includes('{previous}')) {
    throw badInput(`${path}: "template" must be a string containing {question} and {previous}`);
  }
  return { path, template };
}

export function renderRefinement(t: RefinementTemplate, question: string, previous: string): string {
  const values: Record<string, string> = { question, previous };
  return t.template.replace(PLACEHOLDER, (_m, name: string) => values[name] ?? '');
}

/** refine(x, y): a string prompt rewritten, or the chat whose last user turn is rewritten. */
export function refinePrompt(t: RefinementTemplate, prompt: PromptInput, previous: string): PromptInput {
  if (typeof prompt === 'string') return renderRefinement(t, prompt, previous);
  const lastUser = prompt.map((m) => m.role).lastIndexOf('user');
  if (lastUser < 0) throw badInput('cannot build a refinement prompt: the chat has no user message');
  return prompt.map((m, i): ChatMessage => (i === lastUser ? { role: m.role, content: renderRefinement(t, m.content, previous) } : m));
}
