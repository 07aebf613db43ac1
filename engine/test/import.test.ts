import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EngineError } from '../src/errors';
import { importPromptFiles, importPrompts } from '../src/prompt/import';
import type { Db } from '../src/store/db';
import { jsonl, tempProject } from './support/temp-project';

function tableDigest(db: Db): string {
  const rows = db.prepare('SELECT id, content_hash, prompt_json, reference, split FROM prompts ORDER BY id').all();
  return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
}

describe('prompt import', () => {
  let t: ReturnType<typeof tempProject>;
  before(() => {
    t = tempProject();
  });
  after(() => t.dispose());

  it('imports strings and chats, with ids, references and answers', () => {
    const file = join(t.root, 'a.jsonl');
    writeFileSync(file, jsonl([
      { id: 'q1', prompt: 'What is 2+2?', answer: 4 },
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'What is 3+3?' }], reference: '6' },
      { id: 7, prompt: 'Name a colour.' },
    ]) + '\n\n');
    const r = importPrompts(t.project.db, file);
    assert.deepEqual([r.added, r.unchanged, r.total], [3, 0, 3]);
    const rows = t.project.db.prepare('SELECT id, reference, split, source FROM prompts ORDER BY seq').all() as { id: string; reference: string | null; split: string; source: string }[];
    assert.equal(rows[0]?.id, 'q1');
    assert.equal(rows[0]?.reference, '4');
    assert.match(rows[1]?.id ?? '', /^sha256:[0-9a-f]{16}$/);
    assert.equal(rows[2]?.id, '7');
    assert.equal(rows[1]?.source, `${file}:2`);
  });

  it('is idempotent: a second import adds nothing', () => {
    const file = join(t.root, 'a.jsonl');
    const before = tableDigest(t.project.db);
    const r = importPrompts(t.project.db, file);
    assert.deepEqual([r.added, r.unchanged], [0, 3]);
    assert.equal(tableDigest(t.project.db), before);
  });

  it('reads JSON arrays and {"prompts": [...]}', () => {
    const a = join(t.root, 'b.json');
    writeFileSync(a, JSON.stringify([{ id: 'j1', prompt: 'x' }]));
    assert.equal(importPrompts(t.project.db, a, 'heldout').added, 1);
    const b = join(t.root, 'c.json');
    writeFileSync(b, JSON.stringify({ prompts: [{ id: 'j2', prompt: 'y' }] }));
    assert.equal(importPrompts(t.project.db, b).added, 1);
    assert.equal((t.project.db.prepare("SELECT split FROM prompts WHERE id = 'j1'").get() as { split: string }).split, 'heldout');
  });

  const bad: [string, string | Buffer, RegExp][] = [
    ['broken JSON', '{"id":"z1","prompt":"ok"}\n{"prompt": "x"\n', /:2: invalid JSON/],
    ['an array on a line', '{"id":"z1","prompt":"ok"}\n[1,2]\n', /:2: a JSON array where a prompt object belongs; a \.jsonl file holds one object per line .*name the file \.json/],
    ['not an object', '{"id":"z1","prompt":"ok"}\n"just text"\n', /:2: each prompt must be a JSON object .*got string/],
    ['a misspelt key', '{"id":"z1","prompt":"ok"}\n{"prompt": "x", "anwser": 4}\n', /:2: unknown key "anwser" \(did you mean "answer"\?\).*under "meta"/],
    ['an unknown key', '{"id":"z1","prompt":"ok"}\n{"prompt": "x", "difficulty": "hard"}\n', /:2: unknown key "difficulty"; a prompt row has "id", "prompt"/],
    ['missing prompt', '{"id":"z1","prompt":"ok"}\n{"id": "z2"}\n', /:2: missing "prompt"/],
    ['wrong type', '{"id":"z1","prompt":"ok"}\n{"prompt": 5}\n', /:2: "prompt" must be a non-empty string/],
    ['bad role', '{"id":"z1","prompt":"ok"}\n{"messages": [{"role": "bot", "content": "x"}]}\n', /:2: messages\[0\]\.role must be/],
    ['bad reference', '{"id":"z1","prompt":"ok"}\n{"prompt": "x", "reference": {"a": 1}}\n', /:2: "reference" must be a string or a number/],
    ['duplicate ids', '{"id":"z1","prompt":"ok"}\n{"id":"z1","prompt":"other"}\n', /:2: id "z1" is also used by .*:1/],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"id":"z1","prompt":"ok"}\n{"prompt": "'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]), /:2: not valid UTF-8/],
    ['deep nesting', `{"id":"z1","prompt":"ok"}\n${'['.repeat(200000)}${']'.repeat(200000)}\n`, /:2: (invalid JSON|a JSON array where a prompt object belongs)/],
    ['changed content for a known id', '{"id":"q1","prompt":"What is 2+5?"}\n', /:1: id "q1" was already imported with different content/],
    ['empty', '\n\n', /no prompts in the file/],
  ];
  for (const [name, body, expected] of bad) {
    it(`rejects ${name} with file:line and changes nothing`, () => {
      const file = join(t.root, `bad-${name.replace(/\W+/g, '-')}.jsonl`);
      writeFileSync(file, body);
      const digest = tableDigest(t.project.db);
      assert.throws(() => importPrompts(t.project.db, file), (err: unknown) => {
        assert.ok(err instanceof EngineError);
        assert.equal(err.code, 'BAD_INPUT');
        assert.match(err.message, expected);
        assert.ok(err.message.includes(file), err.message);
        return true;
      });
      assert.equal(tableDigest(t.project.db), digest);
    });
  }

  it('keeps the user\'s own fields under "meta" out of the prompt', () => {
    const file = join(t.root, 'meta.jsonl');
    writeFileSync(file, jsonl([{ id: 'm1', prompt: 'What is 5+5?', answer: 10, meta: { difficulty: 'easy', source: 'hand' } }]));
    assert.equal(importPrompts(t.project.db, file).added, 1);
    const row = t.project.db.prepare("SELECT prompt_json, reference FROM prompts WHERE id = 'm1'").get() as { prompt_json: string; reference: string };
    assert.deepEqual([JSON.parse(row.prompt_json), row.reference], ['What is 5+5?', '10']);
  });

  it('several files are one import: a bad second file imports nothing from the first, and says so', () => {
    const good = join(t.root, 'multi-good.jsonl');
    const badFile = join(t.root, 'multi-bad.jsonl');
    writeFileSync(good, jsonl([{ id: 'mf1', prompt: 'one' }, { id: 'mf2', prompt: 'two' }]));
    writeFileSync(badFile, jsonl([{ id: 'mf3', prompt: 'three' }]) + '{"prompt": \n');
    const digest = tableDigest(t.project.db);
    assert.throws(() => importPromptFiles(t.project.db, [good, badFile]), (err: unknown) => {
      assert.ok(err instanceof EngineError);
      assert.match(err.message, /multi-bad\.jsonl:2: invalid JSON .*; nothing was imported from any of the 2 files/);
      return true;
    });
    assert.equal(tableDigest(t.project.db), digest, 'the first file was not imported');
    // The same id in two files with different content is refused before anything is written.
    const clash = join(t.root, 'multi-clash.jsonl');
    writeFileSync(clash, jsonl([{ id: 'mf1', prompt: 'not one' }]));
    assert.throws(() => importPromptFiles(t.project.db, [good, clash]), /multi-clash\.jsonl:1: id "mf1" is also used by .*multi-good\.jsonl:1 .*nothing was imported/);
    assert.equal(tableDigest(t.project.db), digest);
    const ok = importPromptFiles(t.project.db, [good, join(t.root, 'a.jsonl')]);
    assert.deepEqual(ok.map((r) => [r.added, r.unchanged]), [[2, 0], [0, 3]]);
  });

  it('rejects a missing file and an odd split name', () => {
    assert.throws(() => importPrompts(t.project.db, join(t.root, 'nope.jsonl')), /cannot read/);
    assert.throws(() => importPrompts(t.project.db, join(t.root, 'a.jsonl'), '../x'), /not a simple name/);
  });
});
