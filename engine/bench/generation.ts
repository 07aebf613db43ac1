import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GREEDY, type GenerationRequest } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { importPrompts } from '../src/prompt/import';
import { openRound } from '../src/round/rounds';
import { collectTrajectories } from '../src/trajectory/collect';
import { createTrajectories } from '../src/trajectory/store';
import { fmt, median } from './measure';
import type { BenchModel } from './models';
import { RecordingBackend } from './recording-backend';
import { atLeast, atMost, info, type Finding, type SectionResult } from './report';
import { TransformersJsPeer, type PeerGeneration } from './transformers-js';

/**
 * Local generation: the engine's onnx backend against transformers.js on the same model folder,
 * greedy, same prompts and lengths, both sides interleaved in one process.
 * - single stream: one request at a time (engine batchSize 1, one pipeline call per prompt);
 * - trajectory collection: the engine's real collector (trajectory/collect.ts) on a temp project,
 *   N prompts × (answer + K refinements) in one chunk; the peer gets exactly the calls the
 *   collector makes, right before or after each of them, batched (one pipeline call per collector
 *   call) and sequentially (the first few prompts of each call).
 * The floor is the engine's own time inside onnxruntime's session.run for those tokens.
 */

export interface GenerationPlan {
  model: BenchModel;
  threads: number;
  reps: number;
  /** Repetitions of the trajectory comparison (each one collection, the peer taking turns with it). */
  trajectoryReps: number;
  single: { prompts: number; maxNewTokens: number };
  trajectory: { prompts: number; refinements: number; maxNewTokens: number; sequentialSample: number };
}

const SECTION = 'generation';
const WORDS = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];

/** Arithmetic questions and word repetitions (what the tiny and bundled models were trained on). */
export function questions(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    i % 3 === 2 ? `repeat: ${WORDS[i % 8]} ${WORDS[(i * 3 + 1) % 8]} ${WORDS[(i * 5 + 2) % 8]}` : `${(i * 7) % 20}+${(i * 11 + 3) % 20}=`,
  );
}

export async function generationBench(plan: GenerationPlan, log: (line: string) => void): Promise<SectionResult> {
  const { model } = plan;
  const single = await OnnxBackend.open({ modelDir: model.dir, batchSize: 1, intraOpNumThreads: plan.threads });
  const batched = await OnnxBackend.open({ modelDir: model.dir, batchSize: plan.trajectory.prompts, intraOpNumThreads: plan.threads });
  const peer = await TransformersJsPeer.open(model.dir, plan.threads);
  const tokenizer = single.tokenizer;
  /** The peer returns text only: its tokens are the re-encoded text, plus the end-of-text token when it stopped early. */
  const peerTokens = (texts: string[], maxNew: number) =>
    texts.reduce((n, t) => {
      const k = tokenizer.encode(t).length;
      return n + (k >= maxNew ? maxNew : k + 1);
    }, 0);
  try {
    // Warm-up: first runs allocate arenas and JIT the JavaScript on both sides.
    await single.generate([{ key: 'w', prompt: 'warm up', sampling: { ...GREEDY, maxNewTokens: 4 } }]);
    await peer.sequential(['warm up'], 4);
    const shapes = questions(plan.trajectory.prompts);
    await batched.generate(shapes.map((prompt, i) => ({ key: String(i), prompt, sampling: { ...GREEDY, maxNewTokens: 2 } })));
    await peer.batched(shapes, 2);

    log(`  ${model.name}: single stream, ${plan.single.prompts} prompts × ${plan.single.maxNewTokens} new tokens, ${plan.reps} reps`);
    const singleResult = await singleStream(plan, single, peer, peerTokens);
    log(`  ${model.name}: trajectory collection, ${plan.trajectory.prompts} prompts × (answer + ${plan.trajectory.refinements} refinements) × ≤ ${plan.trajectory.maxNewTokens} tokens`);
    const trajectoryResult = await trajectories(plan, batched, peer, peerTokens, log);
    return { findings: [...singleResult.findings, ...trajectoryResult.findings], notes: [...singleResult.notes, ...trajectoryResult.notes] };
  } finally {
    await peer.close();
    await single.close();
    await batched.close();
  }
}

interface EngineRun {
  ms: number;
  tokens: number;
  forwardMs: number;
  texts: string[];
}

async function singleStream(
  plan: GenerationPlan,
  backend: OnnxBackend,
  peer: TransformersJsPeer,
  peerTokens: (texts: string[], maxNew: number) => number,
): Promise<SectionResult> {
  const prompts = questions(plan.single.prompts);
  const maxNew = plan.single.maxNewTokens;
  const engineOne = async (prompt: string): Promise<EngineRun> => {
    const before = backend.stats.forwardMs;
    const started = performance.now();
    const [r] = await backend.generate([{ key: 's', prompt, sampling: { ...GREEDY, maxNewTokens: maxNew } }]);
    return { ms: performance.now() - started, tokens: r!.completionTokens, forwardMs: backend.stats.forwardMs - before, texts: [r!.text] };
  };
  const peerOne = (prompt: string) => peerRun(peer, () => peer.sequential([prompt], maxNew), peerTokens, maxNew);
  // Prompt by prompt, the two sides take turns (who goes first alternates), so load that comes
  // and goes on a shared machine lands on both; each repetition sums its prompts.
  const runs = { engine: [] as EngineRun[], peer: [] as EngineRun[] };
  for (let rep = 0; rep < plan.reps; rep++) {
    const totals = { engine: emptyRun(), peer: emptyRun() };
    for (const [i, prompt] of prompts.entries()) {
      const sides = (rep + i) % 2 ? (['peer', 'engine'] as const) : (['engine', 'peer'] as const);
      for (const side of sides) add(totals[side], side === 'engine' ? await engineOne(prompt) : await peerOne(prompt));
    }
    runs.engine.push(totals.engine);
    runs.peer.push(totals.peer);
  }
  const e = summarize(runs.engine);
  const p = summarize(runs.peer);
  const same = countSame(runs.engine[0]!.texts, runs.peer[0]!.texts);
  const subject = `${plan.model.name} · single stream`;
  return {
    findings: [
      atLeast(SECTION, `${subject} tokens/s`, `${fmt.num(e.tps)} tok/s`, `transformers.js ${fmt.num(p.tps)} tok/s`, e.tps / p.tps, 1.0),
      atMost(SECTION, `${subject} wall / session.run`, fmt.ms(e.ms), `session.run ${fmt.ms(e.forwardMs)}`, e.ms / e.forwardMs, 1.5),
    ],
    notes: [
      `- **${plan.model.name}** is ${plan.model.description}.`,
      `- Single stream: ${prompts.length} prompts one at a time, greedy, ≤ ${maxNew} new tokens, ${plan.threads} onnxruntime thread(s) on both sides, the sides taking turns prompt by prompt, median of ${plan.reps}. ` +
        `Engine ${fmt.int(e.tokens)} tokens in ${fmt.ms(e.ms)} (session.run ${fmt.ms(e.forwardMs)}); transformers.js ${fmt.int(p.tokens)} tokens in ${fmt.ms(p.ms)} ` +
        `(its session.run ${fmt.ms(p.forwardMs)}, wall / session.run ${fmt.ratio(p.ms / p.forwardMs)}). Same text on both sides: ${same}/${prompts.length}. ` +
        `Per repetition (engine / transformers.js tok/s): ${runs.engine.map((r, i) => `${fmt.num((r.tokens / r.ms) * 1000)} / ${fmt.num((runs.peer[i]!.tokens / runs.peer[i]!.ms) * 1000)}`).join(', ')}.`,
    ],
  };
}

function emptyRun(): EngineRun {
  return { ms: 0, tokens: 0, forwardMs: 0, texts: [] };
}

function add(total: EngineRun, run: EngineRun): void {
  total.ms += run.ms;
  total.tokens += run.tokens;
  total.forwardMs += run.forwardMs;
  total.texts.push(...run.texts);
}

async function trajectories(
  plan: GenerationPlan,
  backend: OnnxBackend,
  peer: TransformersJsPeer,
  peerTokens: (texts: string[], maxNew: number) => number,
  log: (line: string) => void,
): Promise<SectionResult> {
  const t = plan.trajectory;
  const maxNew = t.maxNewTokens;
  const runs = { engine: [] as Collected[], peerBatched: [] as EngineRun[], peerSequential: [] as EngineRun[] };
  let sameBatched = 0;
  let steps = 0;
  for (let rep = 0; rep < plan.trajectoryReps; rep++) {
    // The peer gets each collector call's requests right before or after the engine (taking turns):
    // batched as one pipeline call, and the first few one by one.
    const batchedRun = emptyRun();
    const sequentialRun = emptyRun();
    const engineTexts: string[] = [];
    const r = await collectOnce(plan, backend, async (requests) => {
      const prompts = requests.map((q) => q.prompt);
      add(batchedRun, await peerRun(peer, () => peer.batched(prompts, maxNew), peerTokens, maxNew));
      add(sequentialRun, await peerRun(peer, () => peer.sequential(prompts.slice(0, t.sequentialSample), maxNew), peerTokens, maxNew));
    });
    for (const c of r.calls) engineTexts.push(...c.results.map((x) => x.text));
    steps = engineTexts.length;
    sameBatched = countSame(engineTexts, batchedRun.texts);
    runs.engine.push(r);
    runs.peerBatched.push(batchedRun);
    runs.peerSequential.push(sequentialRun);
    log(`    engine ${r.tokens} tokens in ${fmt.ms(r.ms)}; transformers.js batched ${batchedRun.tokens} in ${fmt.ms(batchedRun.ms)}, sequential ${sequentialRun.tokens} in ${fmt.ms(sequentialRun.ms)}`);
  }
  const calls = runs.engine[0]!.calls.length;
  const e = summarize(runs.engine);
  const backendMs = median(runs.engine.map((r) => r.backendMs));
  const pb = summarize(runs.peerBatched);
  const ps = summarize(runs.peerSequential);
  const best = pb.tps >= ps.tps ? { name: 'batched', ...pb } : { name: 'sequential', ...ps };
  const other = best.name === 'batched' ? { name: 'sequential', ...ps } : { name: 'batched', ...pb };
  const subject = `${plan.model.name} · trajectories`;
  const findings: Finding[] = [
    atLeast(SECTION, `${subject} tokens/s`, `${fmt.num(e.tps)} tok/s`, `transformers.js ${best.name} ${fmt.num(best.tps)} tok/s`, e.tps / best.tps, 3.0),
    atMost(SECTION, `${subject} wall / session.run`, fmt.ms(e.ms), `session.run ${fmt.ms(e.forwardMs)}`, e.ms / e.forwardMs, 1.5),
    info(SECTION, `${subject} vs transformers.js ${other.name}`, `${fmt.num(e.tps)} tok/s`, `${fmt.num(other.tps)} tok/s`, e.tps / other.tps),
  ];
  const perRep = runs.engine.map((r, i) => `${fmt.num((r.tokens / r.ms) * 1000)} / ${fmt.num((runs.peerBatched[i]!.tokens / runs.peerBatched[i]!.ms) * 1000)}`);
  return {
    findings,
    notes: [
      `- Trajectories (${plan.model.name}): the engine's collector (trajectory/collect.ts, each batch of steps written to SQLite) on a temp project, ` +
        `${t.prompts} prompts × (answer + ${t.refinements} refinements), greedy, ≤ ${maxNew} new tokens, one chunk of ${t.prompts} (onnx batchSize ${t.prompts}), ` +
        `median of ${plan.trajectoryReps}: ${fmt.int(e.tokens)} tokens in ${fmt.ms(e.ms)}, of which the backend ${fmt.ms(backendMs)} and session.run ${fmt.ms(e.forwardMs)}. ` +
        `transformers.js gets the same ${calls} calls, each right before or after the engine's: batched (one pipeline call of ${t.prompts} prompts per call) ${fmt.int(pb.tokens)} tokens in ${fmt.ms(pb.ms)} ` +
        `(its session.run ${fmt.ms(pb.forwardMs)}); sequential on the first ${t.sequentialSample} prompts of each call ${fmt.int(ps.tokens)} tokens in ${fmt.ms(ps.ms)} ` +
        `(its session.run ${fmt.ms(ps.forwardMs)}); its best is ${best.name}. Same text as the engine, batched: ${sameBatched}/${steps}. ` +
        `Per repetition (engine / transformers.js batched tok/s): ${perRep.join(', ')}.`,
    ],
  };
}

interface Collected {
  /** The collector's wall time, the peer's turns taken off. */
  ms: number;
  tokens: number;
  forwardMs: number;
  backendMs: number;
  calls: RecordingBackend['calls'];
}

/** One collection with the real collector on a fresh temp project (prompts imported, round opened). */
async function collectOnce(plan: GenerationPlan, backend: OnnxBackend, alongside: (requests: GenerationRequest[]) => Promise<void>): Promise<Collected> {
  const t = plan.trajectory;
  const root = mkdtempSync(join(tmpdir(), 'aries-bench-collect-'));
  try {
    writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'bench', model: plan.model.dir }));
    writeFileSync(join(root, 'prompts.jsonl'), questions(t.prompts).map((prompt, i) => JSON.stringify({ id: `q${i}`, prompt })).join('\n') + '\n');
    const p = openProject(root, silentLogger);
    try {
      importPrompts(p.db, join(root, 'prompts.jsonl'));
      const round = openRound(p);
      const owner = { kind: 'round' as const, id: round.id };
      createTrajectories(p.db, owner, Array.from({ length: t.prompts }, (_, i) => `q${i}`), round.policy_model_id);
      const recorder = new RecordingBackend(backend, alongside);
      const before = backend.stats;
      const started = performance.now();
      await collectTrajectories(p.db, owner, recorder, p.template, {
        refinements: t.refinements,
        sampling: { temperature: 0, topP: 1, topK: 0, maxNewTokens: t.maxNewTokens, stop: [] },
        seedBase: 1,
        stopWhenRepeated: false,
        chunkSize: t.prompts,
        modelId: round.policy_model_id,
      });
      const ms = performance.now() - started - recorder.alongsideMs;
      const after = backend.stats;
      const tokens = recorder.calls.reduce((n, c) => n + c.results.reduce((m, r) => m + r.completionTokens, 0), 0);
      return { ms, tokens, forwardMs: after.forwardMs - before.forwardMs, backendMs: after.totalMs - before.totalMs, calls: recorder.calls };
    } finally {
      closeProject(p);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function peerRun(
  peer: TransformersJsPeer,
  run: () => Promise<PeerGeneration>,
  peerTokens: (texts: string[], maxNew: number) => number,
  maxNew: number,
): Promise<EngineRun> {
  const runBefore = peer.runMs;
  const g = await run();
  return { ms: g.ms, tokens: peerTokens(g.texts, maxNew), forwardMs: peer.runMs - runBefore, texts: g.texts };
}

function summarize(runs: readonly { ms: number; tokens: number; forwardMs: number }[]): { ms: number; tokens: number; forwardMs: number; tps: number } {
  const ms = median(runs.map((r) => r.ms));
  const tokens = median(runs.map((r) => r.tokens));
  return { ms, tokens, forwardMs: median(runs.map((r) => r.forwardMs)), tps: median(runs.map((r) => (r.tokens / r.ms) * 1000)) };
}

function countSame(a: readonly string[], b: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] === b[i]) n++;
  return n;
}

