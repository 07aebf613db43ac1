import { readFileSync } from 'node:fs';
import { badInput } from '../errors';
import type { ChatMessage, PromptInput } from '../generation/backend';
import { defaultTemplatePath } from '../paths';

/**
 * The refinement prompt: how a question x and the previous answer y become the next prompt.
 * The text lives in engine/templates/refinement.json, the one file the engine, the trainer
 * (aries_trainer/refinement.py) and the bundled-model builder read (a project may name its own
 * with aries.json's refinementTemplate). Two forms:
 * - "text" (the default): one prompt from {question} and {previous}, replaced in one pass, so a
 *   question containing "{previous}" is left alone; a chat's last user turn is rewritten.
 * - "chat": the conversation goes on — x, then y as the assistant's turn, then the instruction as
 *   a new user turn. Step k's prompt then starts with all of step k-1's sequence, which the onnx
 *   backend's prefix cache does not run again.
 */
export interface RefinementTemplate {
  path: string;
  format: 'text' | 'chat';
  /** text: the template; chat: the instruction. */
  template: string;
}

/** What to add to a config snapshot so a chat-form template is told apart from a text one. */
export function templateIdentity(t: RefinementTemplate): { template: string; templateFormat?: 'chat' } {
  return t.format === 'chat' ? { template: t.template, templateFormat: 'chat' } : { template: t.template };
}

const PLACEHOLDER = /\{(question|previous)\}/g;

export function loadTemplate(path: string = defaultTemplatePath()): RefinementTemplate {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw badInput(`${path}: cannot read the refinement template (${(err as Error).message})`, 'fix the JSON or point aries.refinementTemplate at a valid file');
  }
  const fields = typeof data === 'object' && data !== null ? (data as { template?: unknown; format?: unknown; instruction?: unknown }) : {};
  const format = fields.format ?? 'text';
  if (format === 'chat') {
    if (typeof fields.instruction !== 'string' || fields.instruction.trim() === '') {
      throw badInput(`${path}: a "chat" template needs "instruction": the user turn that asks for a better answer`);
    }
    return { path, format, template: fields.instruction };
  }
  if (format !== 'text') throw badInput(`${path}: "format" is ${JSON.stringify(format)}; use "text" or "chat"`);
  const template = fields.template;
  if (typeof template !== 'string' || !template.includes('{question}') || !template.includes('{previous}')) {
    throw badInput(`${path}: "template" must be a string containing {question} and {previous}`);
  }
  return { path, format, template };
}

export function renderRefinement(t: RefinementTemplate, question: string, previous: string): string {
  const values: Record<string, string> = { question, previous };
  return t.template.replace(PLACEHOLDER, (_m, name: string) => values[name] ?? '');
}

/** refine(x, y): text form, the string prompt or the chat's last user turn rewritten; chat form, the chat continued. */
export function refinePrompt(t: RefinementTemplate, prompt: PromptInput, previous: string): PromptInput {
  if (t.format === 'chat') {
    const chat: ChatMessage[] = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
    return [...chat, { role: 'assistant', content: previous }, { role: 'user', content: t.template }];
  }
  if (typeof prompt === 'string') return renderRefinement(t, prompt, previous);
  const lastUser = prompt.map((m) => m.role).lastIndexOf('user');
  if (lastUser < 0) throw badInput('cannot build a refinement prompt: the chat has no user message');
  return prompt.map((m, i): ChatMessage => (i === lastUser ? { role: m.role, content: renderRefinement(t, m.content, previous) } : m));
}
