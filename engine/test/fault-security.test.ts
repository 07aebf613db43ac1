import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import { expandCommand } from '../src/round/trainer-command';
import { runCli, runCliAsync } from './support/bundled-cli';
import { fakeTrainer } from './support/fake-trainer';
import { type LoopbackServer, startLoopbackServer } from './support/loopback-openai-server';
import { findFiles } from './support/store-digest';
import { copyProject, type SyntheticProject, syntheticProject } from './support/synthetic-round';
import { REPO_ROOT } from './support/tiny-model';

/**
 * Security: processes are started with argument lists only (checked in the source), training.command
 * placeholders cannot inject, export paths stay inside the project even through symbolic links, and
 * an API key given in the environment appears nowhere the engine writes.
 */

function sourceFiles(dir: string, ext: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...sourceFiles(full, ext));
    else if (name.endsWith(ext)) out.push(full);
  }
  return out;
}

const PROCESS_STARTERS = new Set(['spawn', 'spawnSync', 'execFile', 'execFileSync', 'fork']);
const SHELL_STARTERS = new Set(['exec', 'execSync']);

/** Every call into child_process in a file, as a list of problems (empty when all are argument lists without a shell). */
function processCallProblems(file: string): { calls: number; problems: string[] } {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const names = new Map<string, string>(); // local name -> child_process export
  let namespace: string | null = null;
  const problems: string[] = [];
  let calls = 0;
  const where = (n: ts.Node): string => `${relative(REPO_ROOT, file)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !/^(node:)?child_process$/.test(st.moduleSpecifier.text)) continue;
    const b = st.importClause?.namedBindings;
    if (b && ts.isNamespaceImport(b)) namespace = b.name.text;
    if (b && ts.isNamedImports(b)) for (const e of b.elements) names.set(e.name.text, (e.propertyName ?? e.name).text);
  }
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      if (ts.isIdentifier(node.expression) && node.expression.text === 'require' && node.arguments[0] && ts.isStringLiteral(node.arguments[0]) && /child_process$/.test(node.arguments[0].text)) {
        problems.push(`${where(node)}: require('child_process') bypasses this check; import it`);
      }
      const callee = node.expression;
      const fn = ts.isIdentifier(callee) ? names.get(callee.text) : ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) && callee.expression.text === namespace ? callee.name.text : undefined;
      if (fn && SHELL_STARTERS.has(fn)) problems.push(`${where(node)}: ${fn}() runs a shell string`);
      if (fn && PROCESS_STARTERS.has(fn)) {
        calls++;
        const [, args, options] = node.arguments;
        if (args && (ts.isStringLiteral(args) || ts.isTemplateExpression(args) || ts.isNoSubstitutionTemplateLiteral(args) || ts.isBinaryExpression(args))) problems.push(`${where(node)}: ${fn}() arguments are a string, not a list`);
        const opts = args && ts.isObjectLiteralExpression(args) ? args : options;
        if (opts && !ts.isObjectLiteralExpression(opts)) problems.push(`${where(node)}: ${fn}() options are not written out here, so shell cannot be seen to be off`);
        if (opts && ts.isObjectLiteralExpression(opts)) {
          for (const p of opts.properties) {
            if (ts.isSpreadAssignment(p)) problems.push(`${where(node)}: ${fn}() options spread another object (shell could come in)`);
            if (p.name && ts.isIdentifier(p.name) && p.name.text === 'shell' && !(ts.isPropertyAssignment(p) && p.initializer.kind === ts.SyntaxKind.FalseKeyword)) problems.push(`${where(node)}: ${fn}() with shell`);
          }
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return { calls, problems };
}

describe('processes start from argument lists, never shell strings', () => {
  it('engine and extension sources: every child_process call is checked', (t) => {
    const files = [...sourceFiles(join(REPO_ROOT, 'engine/src'), '.ts'), ...sourceFiles(join(REPO_ROOT, 'extension/src'), '.ts')];
    let calls = 0;
    const problems: string[] = [];
    for (const f of files) {
      const r = processCallProblems(f);
      calls += r.calls;
      problems.push(...r.problems);
    }
    assert.deepEqual(problems, []);
    assert.ok(calls >= 3, `found ${calls} process starts; the scan should see the engine's trainer, Python probe and the extension's engine`);
    // The trainer watchdog is a script in a string: it must not ask for a shell either.
    const file = readFileSync(join(REPO_ROOT, 'engine/src/round/trainer-watchdog.ts'), 'utf8');
    const watchdog = /const WATCHDOG_SOURCE = `([^`]*)`/.exec(file)?.[1] ?? '';
    assert.doesNotMatch(watchdog, /shell|execSync|exec\(/);
    assert.match(watchdog, /spawn\(exe, args, \{/);
    t.diagnostic(`${files.length} files, ${calls} process starts: all argument lists, no shell`);
  });

  it('the trainer (Python) starts no shells', () => {
    const problems: string[] = [];
    for (const f of sourceFiles(join(REPO_ROOT, 'engine/trainer/aries_trainer'), '.py')) {
      readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (/shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|subprocess\.getstatusoutput/.test(line)) problems.push(`${relative(REPO_ROOT, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(problems, []);
  });

  it('training.command placeholders: each value is one argument, never re-read as a placeholder', () => {
    const hostile = { python: 'py', trainer: 't', model: "m'; rm -rf / #$(touch pwned){config}", dataset: 'd `id` {model}', dataset_dir: 'dd', output_dir: 'o\nx', config: 'c {dataset}' };
    const out = expandCommand(['{python}', '--model={model}', '{dataset}', '{config}{config}', 'plain', '{unknown}', '{output_dir}'], hostile);
    assert.deepEqual(out, ['py', `--model=${hostile.model}`, hostile.dataset, `${hostile.config}${hostile.config}`, 'plain', '{unknown}', hostile.output_dir]);
  });
});

describe('a hostile project folder name reaches the trainer as plain arguments', { timeout: 120_000 }, () => {
  let proj: SyntheticProject;
  after(() => proj?.dispose());

  it('spaces, quotes, $( ), backticks, ; in the folder, {config} in the model name: argv is exact, nothing else runs', () => {
    proj = syntheticProject({ prompts: 24, prefix: `aries a b'c"d $(touch PWNED1) \`touch PWNED2\`; touch PWNED3 & x-`, config: { model: 'model-{config}' } }); // a value holding {config} stays as it is
    const hostileRoot = proj.root;
    const command = [...fakeTrainer(hostileRoot)('argv'), '{model}', '{dataset}', '{config}', 'lit:{dataset_dir}'];
    writeFileSync(join(hostileRoot, 'aries.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(hostileRoot, 'aries.json'), 'utf8')), training: { command } }));
    for (const phase of ['score', 'select', 'export', 'train']) {
      const r = runCli([phase, '-p', hostileRoot]);
      assert.equal(r.code, 0, `${phase}: ${r.stderr}`);
    }
    const log = readFileSync(join(hostileRoot, '.aries/runs/run-1/train.log'), 'utf8');
    const argv = JSON.parse(/ARGV (.*)/.exec(log)![1]!) as string[];
    const data = join(hostileRoot, '.aries/exports/round-1/data');
    assert.deepEqual(argv, ['argv', join(hostileRoot, '.aries/models/round-1-run-1'), join(hostileRoot, 'model-{config}'), join(data, 'train.jsonl'), join(hostileRoot, '.aries/runs/run-1/trainer-config.json'), `lit:${data}`]);
    for (const dir of [tmpdir(), hostileRoot, REPO_ROOT, process.cwd()]) for (const n of [1, 2, 3]) assert.equal(existsSync(join(dir, `PWNED${n}`)), false, `PWNED${n} in ${dir}`);
  });
});

describe('export paths stay inside the project, symbolic links included', { timeout: 120_000 }, () => {
  let proj: SyntheticProject;
  let outside: string;
  before(async () => {
    proj = syntheticProject({ prompts: 24 });
    for (const phase of ['score', 'select']) assert.equal(runCli([phase, '-p', proj.root]).code, 0);
    outside = mkdtempSync(join(tmpdir(), 'aries-outside-'));
    writeFileSync(join(outside, 'precious.txt'), 'keep me');
  });
  after(() => {
    proj?.dispose();
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  const outsideFiles = (): string[] => findFiles(outside, () => true);

  it('refuses --out through a link to a folder outside, a dangling link, a link to a file outside, .., an absolute path', () => {
    symlinkSync(outside, join(proj.root, 'to-outside'));
    symlinkSync(join(outside, 'not-yet', 'deeper'), join(proj.root, 'dangling'));
    mkdirSync(join(proj.root, 'inside'));
    symlinkSync(join(outside, 'precious.txt'), join(proj.root, 'inside', 'linked.jsonl'));
    const refused = ['to-outside/x.jsonl', 'to-outside/new/dir/x.jsonl', 'inside/../to-outside/y.jsonl', 'dangling/x.jsonl', '../x.jsonl', join(outside, 'abs.jsonl'), 'inside/linked.jsonl'];
    for (const out of refused) {
      const r = runCli(['export', '--out', out, '-p', proj.root]);
      assert.equal(r.code, 2, `${out}: ${r.stderr}`);
      assert.match(r.stderr, /outside the project folder/, out);
    }
    assert.deepEqual(outsideFiles(), ['precious.txt']);
    assert.equal(readFileSync(join(outside, 'precious.txt'), 'utf8'), 'keep me');
    assert.equal(existsSync(join(outside, 'not-yet')), false, 'no folder was created outside');
    const ok = runCli(['export', '--out', 'inside/ok.jsonl', '-p', proj.root]);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('refuses the default path when .aries/exports is a link to a folder outside', () => {
    const root = copyProject(proj.root, 'linked-state');
    try {
      rmSync(join(root, '.aries/exports'), { recursive: true, force: true });
      symlinkSync(outside, join(root, '.aries/exports'));
      const r = runCli(['export', '-p', root]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /outside the project folder/);
      assert.deepEqual(outsideFiles(), ['precious.txt']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('an API key in the environment appears nowhere the engine writes', { timeout: 240_000 }, () => {
  const KEY_ENV = 'ARIES_FAULT_TEST_KEY';
  const KEY = 'sk-aries-fault-9c1e2b4d7f3a-SECRET';
  let server: LoopbackServer;
  let root: string;
  before(async () => {
    server = await startLoopbackServer();
    root = mkdtempSync(join(tmpdir(), 'aries-key-'));
    writeFileSync(join(root, 'train.jsonl'), Array.from({ length: 16 }, (_, i) => JSON.stringify({ id: `t${i}`, prompt: `What is ${i} + 1?`, answer: i + 1 })).join('\n') + '\n');
    writeFileSync(join(root, 'heldout.jsonl'), Array.from({ length: 4 }, (_, i) => JSON.stringify({ id: `h${i}`, prompt: `What is ${i} + 2?`, answer: i + 2 })).join('\n') + '\n');
    const command = fakeTrainer(root)('env');
    writeFileSync(join(root, 'aries.json'), JSON.stringify({
      name: 'key', model: 'served-model', prompts: { train: ['train.jsonl'], heldout: ['heldout.jsonl'] },
      generation: { backend: 'openai', refinements: 2, maxNewTokens: 8, openai: { baseUrl: server.baseUrl, apiKeyEnv: KEY_ENV } },
      selection: { strategy: 'rule' }, training: { command },
    }));
  });
  after(async () => {
    await server?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  function filesWithKey(): string[] {
    return findFiles(root, () => true).filter((f) => readFileSync(join(root, f)).includes(KEY));
  }

  it('a whole round (generate, score, select, export, train, eval) with --verbose: not in the database, logs, exports or output', async () => {
    const env = { ...process.env, [KEY_ENV]: KEY };
    const r = await runCliAsync(['run', '-p', root, '--rounds', '1', '--verbose'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(server.requests.length > 0 && server.requests.every((q) => q.headers.authorization === `Bearer ${KEY}`), 'the key was sent with every request');
    assert.ok(existsSync(join(root, '.aries/runs/run-1/train.log')) && readFileSync(join(root, '.aries/runs/run-1/train.log'), 'utf8').includes('ENV '), 'the trainer printed its environment into train.log');
    assert.deepEqual(filesWithKey(), [], 'files holding the key (database, WAL, train.log, trainer-config, exports, manifest)');
    assert.equal(r.stdout.includes(KEY) || r.stderr.includes(KEY), false, 'the CLI output holds the key');
  });

  it('a server that echoes the key in its errors: the CLI error and the files do not hold it', async () => {
    server.behave((q) => ({ kind: 'json', status: 401, body: { error: { message: `bad key ${String(q.headers.authorization)} (${KEY})` } } }));
    try {
      const r = await runCliAsync(['generate', '-p', root, '--verbose'], { env: { ...process.env, [KEY_ENV]: KEY } });
      assert.equal(r.code, 4, r.stderr);
      assert.match(r.stderr, /\[redacted\]/);
      assert.equal(r.stdout.includes(KEY) || r.stderr.includes(KEY), false, r.stderr);
      assert.deepEqual(filesWithKey(), []);
    } finally {
      server.reset();
    }
  });
});

describe('bidirectional-override characters are shown, not obeyed, in what the CLI prints', () => {
  it('an id with U+202E in an import error reads ⟨U+202E⟩; --json keeps the text as it is', () => {
    const root = mkdtempSync(join(tmpdir(), 'aries-bidi-'));
    try {
      writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'bidi', model: 'model' }));
      const id = 'q\u202E1gnp.exe';
      writeFileSync(join(root, 'a.jsonl'), `${JSON.stringify({ id, prompt: 'What is 1+1?' })}\n${JSON.stringify({ id, prompt: 'other' })}\n`);
      const bad = runCli(['import', join(root, 'a.jsonl'), '-p', root]);
      assert.equal(bad.code, 2, bad.stderr);
      assert.ok(bad.stderr.includes('id "q⟨U+202E⟩1gnp.exe" is also used by'), bad.stderr);
      assert.doesNotMatch(bad.stderr, /[\u202A-\u202E\u2066-\u2069]/);
      const json = runCli(['import', join(root, 'a.jsonl'), '-p', root, '--json']);
      assert.equal(json.code, 2);
      assert.ok((JSON.parse(json.stdout.trim().split('\n').pop()!) as { error: { message: string } }).error.message.includes(id), '--json carries the exact id');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
