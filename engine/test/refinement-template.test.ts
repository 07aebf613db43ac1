import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { EngineError } from '../src/errors';
import { loadTemplate, refinePrompt, templateIdentity } from '../src/refinement/template';

describe('refinement template', () => {
  const dir = mkdtempSync(join(tmpdir(), 'aries-template-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(value));
    return path;
  };

  test('the shipped template is the text form; its identity in snapshots is the template alone', () => {
    const t = loadTemplate();
    assert.equal(t.format, 'text');
    assert.deepEqual(templateIdentity(t), { template: t.template });
    assert.equal(refinePrompt(t, 'Q', 'A'), t.template.replace('{question}', 'Q').replace('{previous}', 'A'));
  });

  test('the chat form continues the conversation, for string and chat prompts', () => {
    const t = loadTemplate(file('chat.json', { version: 1, format: 'chat', instruction: 'Try again.' }));
    assert.deepEqual(templateIdentity(t), { template: 'Try again.', templateFormat: 'chat' });
    const asked = [{ role: 'assistant', content: 'A' }, { role: 'user', content: 'Try again.' }];
    assert.deepEqual(refinePrompt(t, 'Q', 'A'), [{ role: 'user', content: 'Q' }, ...asked]);
    const chat = [{ role: 'system' as const, content: 's' }, { role: 'user' as const, content: 'Q' }];
    assert.deepEqual(refinePrompt(t, chat, 'A'), [...chat, ...asked]);
  });

  test('bad files name the file and the field', () => {
    const refused = (path: string, message: RegExp) =>
      assert.throws(() => loadTemplate(path), (err: unknown) => err instanceof EngineError && err.code === 'BAD_INPUT' && err.message.includes(path) && message.test(err.message));
    refused(file('no-instruction.json', { format: 'chat' }), /needs "instruction"/);
    refused(file('blank.json', { format: 'chat', instruction: '  ' }), /needs "instruction"/);
    refused(file('other.json', { format: 'turns', template: '{question}{previous}' }), /use "text" or "chat"/);
    refused(file('text.json', { template: 'no placeholders' }), /\{question\} and \{previous\}/);
  });
});
