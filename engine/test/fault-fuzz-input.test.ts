import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EngineError } from '../src/errors';
import { parseProjectConfig } from '../src/project/config';
import { importPrompts } from '../src/prompt/import';
import { runCli } from './support/bundled-cli';
import { FUZZ_SCALE, FUZZ_SEED, nest, oddValues, Rand } from './support/fuzz';
import { dbDigest, folderDigest } from './support/store-digest';
import { tempProject } from './support/temp-project';

/**
 * Fuzzed bad input, seeded (ARIES_FUZZ_SEED) and counted: prompt files (JSONL and JSON) with
 * random bytes, invalid UTF-8, cut lines, deep nesting, wrong types, duplicate ids, huge lines;
 * aries.json with a wrong value at a random key or an unknown key. Every rejection must be a
 * BAD_INPUT that names the file and the line / key, and must change nothing in the database.
 * The CLI is checked on a sample: exit 2, the same message, database and folder unchanged.
 */

interface Tally {
  cases: number;
  rejected: number;
  accepted: number;
  byKind: Record<string, number>;
}

const tally = (): Tally => ({ cases: 0, rejected: 0, accepted: 0, byKind: {} });
const describeTally = (t: Tally, seed: number): string => `${t.cases} cases (seed ${seed}): ${t.rejected} rejected with file:line and nothing changed, ${t.accepted} still valid and imported; by kind ${JSON.stringify(t.byKind)}`;

/** A valid file's rows; ids carry the test and case (`l12`, `j3`) so earlier cases' imports never collide. */
function baseRows(r: Rand, n: string): Record<string, unknown>[] {
  return Array.from({ length: 12 }, (_, i) =>
    i % 3 === 0
      ? { id: `c${n}-q${i}`, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `What is ${i}+${r.int(9)}?` }], reference: String(i) }
      : i % 3 === 1
        ? { id: `c${n}-q${i}`, prompt: `Sum ${i} and ${r.int(9)}.`, answer: i }
        : { prompt: `Name a colour (${i}, case ${n}).` },
  );
}

const INVALID_UTF8 = [[0xc3, 0x28], [0xff], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]];
/** Mutations that never leave a valid file (random bytes may be all spaces; a wrong type may still be a valid one). */
const MUST_REJECT = new Set(['invalid-utf8', 'cut', 'deep', 'duplicate-id', 'surrogate', 'not-object', 'huge']);
const FIELDS = ['prompt', 'messages', 'id', 'reference', 'answer', 'messages.0', 'messages.0.role', 'messages.0.content'];

/** One mutated prompt file: its bytes, the 1-based line the error must name, what was done. */
function mutateJsonl(r: Rand, rows: Record<string, unknown>[]): { body: Buffer; line: number; kind: string } {
  const lines = rows.map((x) => JSON.stringify(x));
  const i = r.int(lines.length);
  const kinds = ['random-bytes', 'invalid-utf8', 'cut', 'deep', 'wrong-type', 'wrong-type', 'duplicate-id', 'surrogate', 'not-object', 'huge'];
  const kind = r.int(60) === 0 ? 'huge' : r.pick(kinds.slice(0, -1));
  let line = i + 1;
  const asBytes: Buffer[] = lines.map((l) => Buffer.from(l));
  switch (kind) {
    case 'random-bytes':
      asBytes[i] = r.bytes(1 + r.int(200), [0x0a]);
      break;
    case 'invalid-utf8': {
      const at = 2 + r.int(Math.max(1, asBytes[i]!.length - 4));
      asBytes[i] = Buffer.concat([asBytes[i]!.subarray(0, at), Buffer.from(r.pick(INVALID_UTF8)), asBytes[i]!.subarray(at)]);
      break;
    }
    case 'cut':
      asBytes[i] = asBytes[i]!.subarray(0, 1 + r.int(asBytes[i]!.length - 2));
      break;
    case 'deep': {
      const depth = r.pick([1000, 10_000, 100_000, 500_000]);
      asBytes[i] = Buffer.from(`{"prompt": ${'['.repeat(depth)}"x"${']'.repeat(depth)}}`);
      break;
    }
    case 'wrong-type': {
      const row = structuredClone(rows[i]!);
      const path = r.pick(FIELDS).split('.');
      let target: Record<string, unknown> = row;
      for (const key of path.slice(0, -1)) {
        if (typeof target[key] !== 'object' || target[key] === null) target[key] = [{ role: 'user', content: 'x' }];
        target = target[key] as Record<string, unknown>;
      }
      target[path.at(-1)!] = r.pick(oddValues(r));
      asBytes[i] = Buffer.from(JSON.stringify(row));
      break;
    }
    case 'duplicate-id': {
      const j = r.pick(rows.map((x, k) => (x.id !== undefined && k !== i ? k : -1)).filter((k) => k >= 0));
      asBytes[i] = Buffer.from(JSON.stringify({ ...rows[i], id: rows[j]!.id, prompt: `different ${r.next()}` }));
      line = Math.max(i, j) + 1;
      break;
    }
    case 'surrogate':
      asBytes[i] = Buffer.from(`{"id": "s${r.next()}", "prompt": "half a pair: \\ud83d here"}`);
      break;
    case 'not-object':
      asBytes[i] = Buffer.from(JSON.stringify(r.pick([1, 'text', null, [rows[i]], true])));
      break;
    case 'huge':
      asBytes[i] = Buffer.from(JSON.stringify({ prompt: 'y'.repeat(4 * 1024 * 1024 + 10) }));
      break;
  }
  return { body: Buffer.concat(asBytes.flatMap((b) => [b, Buffer.from('\n')])), line, kind };
}

describe('fuzzed prompt files', () => {
  let t: ReturnType<typeof tempProject>;
  before(() => {
    t = tempProject();
  });
  after(() => t.dispose());

  function check(file: string, body: Buffer, where: RegExp, label: string, count: Tally, kind: string): void {
    writeFileSync(file, body);
    const digest = dbDigest(t.project.db.name);
    count.cases++;
    count.byKind[kind] = (count.byKind[kind] ?? 0) + 1;
    let err: unknown = null;
    try {
      importPrompts(t.project.db, file, 'fuzz');
    } catch (e) {
      err = e;
    }
    if (err === null) {
      assert.ok(!MUST_REJECT.has(kind), `${label}: accepted a file that must be refused`);
      count.accepted++;
      return;
    }
    assert.ok(err instanceof EngineError, `${label}: not an EngineError: ${String(err)}`);
    assert.equal(err.code, 'BAD_INPUT', `${label}: ${err.message}`);
    assert.ok(err.message.includes(file), `${label}: the message does not name the file: ${err.message}`);
    assert.match(err.message, where, `${label}: the message does not name the line`);
    assert.equal(dbDigest(t.project.db.name), digest, `${label}: a rejected file changed the database`);
    count.rejected++;
  }

  it('JSONL: one bad line among good ones', (tt) => {
    const r = new Rand(FUZZ_SEED);
    const count = tally();
    for (let n = 0; n < 300 * FUZZ_SCALE; n++) {
      const { body, line, kind } = mutateJsonl(r, baseRows(r, `l${n}`));
      check(join(t.root, `fuzz-${n % 7}.jsonl`), body, new RegExp(`\\.jsonl:${line}: `), `case ${n} (${kind}, line ${line}, seed ${FUZZ_SEED})`, count, kind);
    }
    tt.diagnostic(`JSONL ${describeTally(count, FUZZ_SEED)}`);
    assert.ok(count.rejected > count.cases * 0.8, 'most mutations should be rejected');
  });

  it('JSON arrays: one bad item among good ones', (tt) => {
    const r = new Rand(FUZZ_SEED + 1);
    const count = tally();
    for (let n = 0; n < 60 * FUZZ_SCALE; n++) {
      const rows: unknown[] = baseRows(r, `j${n}`);
      const i = r.int(rows.length);
      const path = r.pick(FIELDS).split('.')[0]!;
      rows[i] = r.int(4) === 0 ? r.pick(oddValues(r)) : { ...(rows[i] as object), [path]: r.pick(oddValues(r)) };
      const wrapped = r.int(2) ? rows : { prompts: rows };
      check(join(t.root, `fuzz-${n % 3}.json`), Buffer.from(JSON.stringify(wrapped)), new RegExp(`\\.json: item ${i + 1}: `), `case ${n} (item ${i + 1}, seed ${FUZZ_SEED + 1})`, count, 'json-item');
    }
    tt.diagnostic(`JSON ${describeTally(count, FUZZ_SEED + 1)}`);
  });

  it('the CLI on a sample: exit 2, file:line on stderr, database and folder unchanged', (tt) => {
    const r = new Rand(FUZZ_SEED + 2);
    const samples = Array.from({ length: 6 }, (_, n) => mutateJsonl(r, baseRows(r, `k${n}`))).filter((m) => m.kind !== 'huge');
    let checked = 0;
    for (const [n, m] of samples.entries()) {
      const file = join(t.root, `cli-${n}.jsonl`);
      writeFileSync(file, m.body);
      const before = [dbDigest(t.project.db.name), folderDigest(t.root)];
      const res = runCli(['import', file, '-p', t.root]);
      if (res.code === 0) continue; // still valid
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, new RegExp(`cli-${n}\\.jsonl:\\d+: `));
      assert.deepEqual([dbDigest(t.project.db.name), folderDigest(t.root)], before);
      checked++;
    }
    tt.diagnostic(`CLI: ${checked} bad files, exit 2 each, nothing changed`);
  });
});

describe('fuzzed aries.json', () => {
  const base = parseProjectConfig('aries.json', { model: 'model', prompts: { train: ['t.jsonl'] } });
  const file = '/projects/p/aries.json';

  /** Every key path of the parsed defaults whose value is not an object. */
  function leaves(value: unknown, prefix: string[] = []): string[][] {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [prefix];
    const entries = Object.entries(value);
    if (entries.length === 0) return [prefix];
    return entries.flatMap(([k, v]) => leaves(v, [...prefix, k]));
  }

  it('a wrong value at a random key, or an unknown key: BAD_INPUT naming the file and the key', (tt) => {
    const r = new Rand(FUZZ_SEED + 3);
    const paths = leaves(base);
    const count = tally();
    for (let n = 0; n < 400 * FUZZ_SCALE; n++) {
      const config = structuredClone(base) as unknown as Record<string, unknown>;
      const path = r.pick(paths);
      let target = config;
      for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
      const unknownKey = r.int(8) === 0;
      const key = unknownKey ? `typo${r.int(100)}` : path.at(-1)!;
      target[key] = unknownKey ? 1 : r.pick(oddValues(r));
      const kind = unknownKey ? 'unknown-key' : 'wrong-value';
      count.cases++;
      count.byKind[kind] = (count.byKind[kind] ?? 0) + 1;
      const label = `case ${n}: ${[...path.slice(0, -1), key].join('.')} = ${JSON.stringify(target[key])?.slice(0, 60)} (seed ${FUZZ_SEED + 3})`;
      try {
        parseProjectConfig(file, JSON.parse(JSON.stringify(config)));
        count.accepted++;
      } catch (err) {
        assert.ok(err instanceof EngineError, `${label}: ${String(err)}`);
        assert.equal(err.code, 'BAD_INPUT', `${label}: ${err.message}`);
        assert.ok(err.message.startsWith(`${file}: `), `${label}: ${err.message}`);
        const dotted = [...path.slice(0, -1), key].filter((k) => !/^\d+$/.test(k)).join('.');
        assert.ok(err.message.includes(dotted) || err.message.includes(path.slice(0, -1).join('.')), `${label}: the message does not name the key: ${err.message}`);
        count.rejected++;
      }
    }
    tt.diagnostic(`aries.json ${count.cases} cases (seed ${FUZZ_SEED + 3}): ${count.rejected} rejected naming the key, ${count.accepted} still valid; ${JSON.stringify(count.byKind)}`);
  });

  it('the CLI: bad aries.json files are refused (exit 2) before the database is touched', (tt) => {
    const t = tempProject();
    try {
      const good = JSON.stringify({ name: 'test', model: 'model' });
      const bad = ['', '{', '[]', 'null', '{"model": 5}', `{"model": "m", "generation": ${JSON.stringify(nest(3000))}}`, '{"model": "m", "generation": {"refinements": "3"}}', `{"model": "m", "x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`];
      for (const text of bad) {
        writeFileSync(join(t.root, 'aries.json'), text);
        const before = [dbDigest(t.project.db.name), folderDigest(t.root)];
        const res = runCli(['stats', '-p', t.root]);
        assert.equal(res.code, 2, `${text.slice(0, 40)}: ${res.stderr}`);
        assert.match(res.stderr, /aries\.json(:\d+:\d+)?: /, 'the file is named (with line:column when it is not JSON)');
        assert.deepEqual([dbDigest(t.project.db.name), folderDigest(t.root)], before);
      }
      writeFileSync(join(t.root, 'aries.json'), good);
      assert.equal(runCli(['stats', '-p', t.root]).code, 0);
      writeFileSync(join(t.root, 'aries.json'), `\ufeff${good}`);
      assert.equal(runCli(['stats', '-p', t.root]).code, 0, 'a byte-order mark (Windows editors) is not an error');
      tt.diagnostic(`CLI: ${bad.length} bad aries.json files, exit 2 each, nothing changed`);
    } finally {
      t.dispose();
    }
  });
});
