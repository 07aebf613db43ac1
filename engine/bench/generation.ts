import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GREEDY, type GenerationRequest, type PromptInput } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { silentLogger } from '../src/log';
import { closeProject, openProject } from '../src/project/project';
import { importPrompts } from '../src/prompt/import';
import { openRound } from '../src/round/rounds';
import { collectTrajectories } from '../src/trajectory/collect';
import { createTrajectories } from '../src/trajectory/store';
import { fmt, median } from './measure';
import { REPO_ROOT } from '../test/support/tiny-model';
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
  trajectory: {
    prompts: number;
    /** The engine's onnx batchSize and the collector's chunk; the peer's calls are that size too. */
    batchSize: number;
    refinements: number;
    maxNewTokens: number;
    sequentialSample: number;
    /** 'short': the bundled model's arithmetic; 'long': a shared system prompt and a word problem, ~300 tokens. */
    kind: 'short' | 'long';
    /** 0 (default): greedy. */
    temperature?: number;
  };
  /** The trajectories target, engine with everything on / transformers.js's best. */
  trajectoryTarget: number;
}

const SECTION = 'generation';
const WORDS = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];

/** Arithmetic questions and word repetitions (what the tiny and bundled models were trained on). */
export function questions(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    i % 3 === 2 ? `repeat: ${WORDS[i % 8]} ${WORDS[(i * 3 + 1) % 8]} ${WORDS[(i * 5 + 2) % 8]}` : `${(i * 7) % 20}+${(i * 11 + 3) % 20}=`,
  );
}

/** Instructions every long prompt starts with, as a project's system prompt would be. */
const SYSTEM =
  'You are a careful assistant for arithmetic word problems. Read the question, work it out step by step in short lines, ' +
  'check each step against the numbers in the question, and end with "Answer: N" on a line of its own, where N is a whole number.';

/** ~300 tokens with the bench decoder's byte-level tokenizer: the system prompt and a word problem. */
export function longPrompts(n: number): PromptInput[] {
  return Array.from({ length: n }, (_, i) => [
    { role: 'system' as const, content: SYSTEM },
    {
      role: 'user' as const,
      content: `Question ${i + 1}: a shop sells ${i + 3} boxes of ${7 + (i % 5)} pens and ${12 + i} single pens on Monday, then ${((i * 3) % 11) + 2} boxes on Tuesday. How many pens did it sell?`,
    },
  ]);
}

/**
 * The demo's generation, before and after: the example project's own train prompts and its
 * generation settings (sampling at its temperature, K, max tokens, batch), collected by the
 * engine as it was (static batches, nothing cached) and as it is now (the defaults).
 */
export async function demoGenerationBench(
  model: BenchModel,
  sizes: { prompts: number; batchSize: number; refinements: number; maxNewTokens: number; temperature: number; reps: number },
  threads: number,
  log: (line: string) => void,
): Promise<SectionResult> {
  const file = join(REPO_ROOT, 'examples/arithmetic/prompts/train.jsonl');
  const prompts = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).slice(0, sizes.prompts).map((l) => (JSON.parse(l) as { prompt: PromptInput }).prompt);
  const plan: GenerationPlan = {
    model, threads, reps: 1, trajectoryReps: sizes.reps, single: { prompts: 0, maxNewTokens: 0 }, trajectoryTarget: 1,
    trajectory: { prompts: prompts.length, batchSize: sizes.batchSize, refinements: sizes.refinements, maxNewTokens: sizes.maxNewTokens, sequentialSample: 0, kind: 'short', temperature: sizes.temperature },
  };
  const variants = [VARIANTS[0], { name: 'defaults', options: {} }];
  const backends = await Promise.all(variants.map((v) => OnnxBackend.open({ modelDir: model.dir, batchSize: sizes.batchSize, intraOpNumThreads: threads, ...v.options })));
  try {
    const runs = variants.map(() => [] as Collected[]);
    for (let rep = 0; rep < sizes.reps; rep++) {
      await collectEach(plan, backends, runs, rep, prompts);
      log(`    demo generation: ${variants.map((v, i) => `${v.name} ${fmt.ms(runs[i]![rep]!.ms)}`).join(', ')}`);
    }
    const [before, after] = runs.map((r) => summarize(r)) as [ReturnType<typeof summarize>, ReturnType<typeof summarize>];
    const same = countSame(byTrajectory(runs[1]![0]!.calls), byTrajectory(runs[0]![0]!.calls));
    const steps = byTrajectory(runs[0]![0]!.calls).length;
    const subject = `${model.name} · the demo's generation phase`;
    return {
      findings: [info(SECTION, `${subject}: wall`, fmt.ms(after.ms), `static batches, optimum's graph, nothing cached ${fmt.ms(before.ms)}`, before.ms / after.ms)],
      notes: [
        `- The demo's generation (${model.name}): the first ${prompts.length} train prompts of examples/arithmetic, sampling at temperature ${sizes.temperature} (no speculation: it is for greedy requests), ` +
          `answer + ${sizes.refinements} refinements, ≤ ${sizes.maxNewTokens} new tokens, batchSize ${sizes.batchSize}, the real collector, median of ${sizes.reps}: ` +
          `static batches on optimum's graph ${fmt.int(before.tokens)} tokens in ${fmt.ms(before.ms)} (prompt tokens run ${fmt.int(runs[0]![0]!.prefilled)}), the defaults ${fmt.int(after.tokens)} tokens in ${fmt.ms(after.ms)} ` +
          `(the slot-cache graph and the prefix cache; prompt tokens run ${fmt.int(runs[1]![0]!.prefilled)}, from the cache ${fmt.int(runs[1]![0]!.reused)}). Same text: ${same}/${steps}.`,
      ],
    };
  } finally {
    for (const b of backends) await b.close();
  }
}

function benchPrompts(plan: GenerationPlan): PromptInput[] {
  return plan.trajectory.kind === 'long' ? longPrompts(plan.trajectory.prompts) : questions(plan.trajectory.prompts);
}

export async function generationBench(plan: GenerationPlan, log: (line: string) => void): Promise<SectionResult> {
  const { model } = plan;
  const single = await OnnxBackend.open({ modelDir: model.dir, batchSize: 1, intraOpNumThreads: plan.threads });
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
    await peer.batched(benchPrompts(plan), 2);

    log(`  ${model.name}: single stream, ${plan.single.prompts} prompts × ${plan.single.maxNewTokens} new tokens, ${plan.reps} reps`);
    const singleResult = await singleStream(plan, single, peer, peerTokens);
    log(`  ${model.name}: trajectory collection, ${plan.trajectory.prompts} prompts × (answer + ${plan.trajectory.refinements} refinements) × ≤ ${plan.trajectory.maxNewTokens} tokens`);
    const trajectoryResult = await trajectories(plan, peer, peerTokens, log);
    return { findings: [...singleResult.findings, ...trajectoryResult.findings], notes: [...singleResult.notes, ...trajectoryResult.notes] };
  } finally {
    await peer.close();
    await single.close();
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

/**
 * Engine settings compared on the same collection, each adding one technique to the one before:
 * the first is the engine before any of them, the second is the default.
 */
const VARIANTS = [
  { name: 'static batches', options: { cacheGraph: 'present', continuousBatching: false, prefixCacheBytes: 0, speculativeTokens: 0 } },
  { name: '+ prefix cache', options: { cacheGraph: 'present', continuousBatching: false, speculativeTokens: 0 } },
  { name: '+ slot-cache graph (the default)', options: { cacheGraph: 'slots', continuousBatching: false, speculativeTokens: 0 } },
  { name: '+ continuous batching', options: { cacheGraph: 'slots', continuousBatching: true, speculativeTokens: 0 } },
  { name: '+ prompt-lookup speculation', options: { cacheGraph: 'slots', continuousBatching: true, speculativeTokens: 8 } },
] as const;
const DEFAULT_VARIANT = 2;

/** A refinement template in chat form (refinement/template.ts), for the chat-form comparison. */
const CHAT_TEMPLATE = { version: 1, format: 'chat', instruction: 'Check the previous answer and give a better one.' };

async function trajectories(
  plan: GenerationPlan,
  peer: TransformersJsPeer,
  peerTokens: (texts: string[], maxNew: number) => number,
  log: (line: string) => void,
): Promise<SectionResult> {
  const t = plan.trajectory;
  const maxNew = t.maxNewTokens;
  const backends = await Promise.all(VARIANTS.map((v) => OnnxBackend.open({ modelDir: plan.model.dir, batchSize: t.batchSize, intraOpNumThreads: plan.threads, ...v.options })));
  try {
    // Warm-up: first runs allocate arenas (each collection empties the prefix cache).
    for (const b of backends) await b.generate(benchPrompts(plan).map((prompt, i) => ({ key: String(i), prompt, sampling: { ...GREEDY, maxNewTokens: 2 } })));
    const runs = VARIANTS.map(() => [] as Collected[]);
    const peerBatched: EngineRun[] = [];
    const peerSequential: EngineRun[] = [];
    let replay: GenerationRequest[][] | undefined;
    for (let rep = 0; rep < plan.trajectoryReps; rep++) {
      // The sides take turns: the peer replays the static run's calls (one per step index, the
      // prompts the collector built) before the engine on odd repetitions, after it on even ones.
      const peerTurn = async (calls: GenerationRequest[][]) => {
        const batched = emptyRun();
        const sequential = emptyRun();
        for (const requests of calls) {
          const prompts = requests.map((q) => q.prompt);
          add(batched, await peerRun(peer, () => peer.batched(prompts, maxNew), peerTokens, maxNew));
          add(sequential, await peerRun(peer, () => peer.sequential(prompts.slice(0, t.sequentialSample), maxNew), peerTokens, maxNew));
        }
        peerBatched.push(batched);
        peerSequential.push(sequential);
      };
      if (replay && rep % 2 === 1) await peerTurn(replay);
      await collectEach(plan, backends, runs, rep);
      replay = runs[0]![rep]!.calls.map((c) => c.requests);
      if (rep % 2 === 0) await peerTurn(replay);
      log(`    ${VARIANTS.map((v, i) => `${v.name} ${fmt.ms(runs[i]![rep]!.ms)}`).join(', ')}; transformers.js batched ${fmt.ms(peerBatched.at(-1)!.ms)}`);
    }
    // The same collection with a chat-form refinement template ([x, y, instruction]): other prompts,
    // so other texts; what the prefix cache saves when step k-1's whole sequence is step k's prefix.
    const chat = [backends[0]!, backends[DEFAULT_VARIANT]!];
    const chatRuns: Collected[] = [];
    for (const b of chat) chatRuns.push(await collectOnce(plan, b, undefined, CHAT_TEMPLATE));
    log(`    chat-form template: static batches ${fmt.ms(chatRuns[0]!.ms)}, the defaults ${fmt.ms(chatRuns[1]!.ms)}`);
    const [chatStatic, chatCached] = chatRuns.map((r) => summarize([r])) as [ReturnType<typeof summarize>, ReturnType<typeof summarize>];
    const stats = runs.map((r) => summarize(r));
    const baseTexts = byTrajectory(runs[0]![0]!.calls);
    const sameAsStatic = runs.map((r) => countSame(byTrajectory(r[0]!.calls), baseTexts));
    const steps = baseTexts.length;
    const pb = summarize(peerBatched);
    const ps = summarize(peerSequential);
    const best = pb.tps >= ps.tps ? { name: 'batched', ...pb } : { name: 'sequential', ...ps };
    const other = best.name === 'batched' ? { name: 'sequential', ...ps } : { name: 'batched', ...pb };
    const sameBatched = countSame(baseTexts, byTrajectory(asCalls(replay ?? [], peerBatched[0]?.texts ?? [])));
    const full = stats[DEFAULT_VARIANT]!;
    const fullRun = runs[DEFAULT_VARIANT]![0]!;
    const subject = `${plan.model.name} · trajectories`;
    const findings: Finding[] = [
      atLeast(SECTION, `${subject} tokens/s`, `${fmt.num(full.tps)} tok/s`, `transformers.js ${best.name} ${fmt.num(best.tps)} tok/s`, full.tps / best.tps, plan.trajectoryTarget),
      ...VARIANTS.map((v, i) => info(SECTION, `${subject}: ${v.name}`, `${fmt.num(stats[i]!.tps)} tok/s`, i === 0 ? `transformers.js ${best.name} ${fmt.num(best.tps)} tok/s` : `${VARIANTS[i - 1]!.name} ${fmt.num(stats[i - 1]!.tps)} tok/s`, i === 0 ? stats[0]!.tps / best.tps : stats[i]!.tps / stats[i - 1]!.tps)),
      info(SECTION, `${subject}: the same calls, transformers.js batched time / engine time`, fmt.ms(full.ms), `transformers.js batched ${fmt.ms(pb.ms)}`, pb.ms / full.ms),
      info(SECTION, `${subject}, chat-form template: the defaults (prefix cache, slot-cache graph)`, `${fmt.num(chatCached.tps)} tok/s`, `static batches ${fmt.num(chatStatic.tps)} tok/s`, chatCached.tps / chatStatic.tps),
      atMost(SECTION, `${subject} wall / session.run`, fmt.ms(full.ms), `session.run ${fmt.ms(full.forwardMs)}`, full.ms / full.forwardMs, 1.5),
      info(SECTION, `${subject} vs transformers.js ${other.name}`, `${fmt.num(full.tps)} tok/s`, `${fmt.num(other.tps)} tok/s`, full.tps / other.tps),
    ];
    const perRep = runs[DEFAULT_VARIANT]!.map((r, i) => `${fmt.num((r.tokens / r.ms) * 1000)} / ${fmt.num((peerBatched[i]!.tokens / peerBatched[i]!.ms) * 1000)}`);
    const staticRun = runs[0]![0]!;
    return {
      findings,
      notes: [
        `- Trajectories (${plan.model.name}): the engine's collector (trajectory/collect.ts, each step written to SQLite) on a temp project, ` +
          `${t.prompts} prompts${t.kind === 'long' ? ` (a system prompt shared by all and a word problem: ${fmt.int(firstPromptTokens(staticRun))} prompt tokens on average for the first answer)` : ''} × (answer + ${t.refinements} refinements), greedy, ≤ ${maxNew} new tokens, onnx batchSize and collector chunk ${t.batchSize}, ` +
          `median of ${plan.trajectoryReps}. Each engine setting runs the same collection on its own backend: ${VARIANTS.map((v, i) => `${v.name} ${fmt.int(stats[i]!.tokens)} tokens in ${fmt.ms(stats[i]!.ms)} (session.run ${fmt.ms(stats[i]!.forwardMs)}, of which prefill ${fmt.ms(runs[i]![0]!.prefillMs)}, prompt tokens run ${fmt.int(runs[i]![0]!.prefilled)}, ${runs[i]![0]!.batches} prefills, ${runs[i]![0]!.steps} decode steps${runs[i]![0]!.reused ? `, taken from the cache ${fmt.int(runs[i]![0]!.reused)}` : ''}${runs[i]![0]!.drafted ? `, draft tokens kept ${fmt.int(runs[i]![0]!.accepted)} of ${fmt.int(runs[i]![0]!.drafted)}` : ''})`).join('; ')}. ` +
          `Same text as static batches: ${sameAsStatic.map((n, i) => `${VARIANTS[i]!.name} ${n}/${steps}`).slice(1).join(', ')}. ` +
          `transformers.js gets the static run's ${staticRun.calls.length} calls (one per step index, the prompts the collector built), taking turns with the engine: batched (one pipeline call of ${t.batchSize} prompts per call) ${fmt.int(pb.tokens)} tokens in ${fmt.ms(pb.ms)} ` +
          `(its session.run ${fmt.ms(pb.forwardMs)}); sequential on the first ${t.sequentialSample} prompts of each call ${fmt.int(ps.tokens)} tokens in ${fmt.ms(ps.ms)} ` +
          `(its session.run ${fmt.ms(ps.forwardMs)}); its best is ${best.name}. Same text as the engine, batched: ${sameBatched}/${steps}. ` +
          `Per repetition (engine defaults / transformers.js batched tok/s): ${perRep.join(', ')}. Cache held ${fmt.int(fullRun.reused)} of ${fmt.int(fullRun.reused + fullRun.prefilled)} prompt tokens. ` +
          `With a chat-form refinement template (${JSON.stringify(CHAT_TEMPLATE)}; other prompts, so other texts, one run each): static batches ${fmt.int(chatStatic.tokens)} tokens in ${fmt.ms(chatStatic.ms)} ` +
          `(prompt tokens run ${fmt.int(chatRuns[0]!.prefilled)}, prefill ${fmt.ms(chatRuns[0]!.prefillMs)}), the defaults (prefix cache, slot-cache graph) ${fmt.int(chatCached.tokens)} tokens in ${fmt.ms(chatCached.ms)} ` +
          `(prompt tokens run ${fmt.int(chatRuns[1]!.prefilled)}, from the cache ${fmt.int(chatRuns[1]!.reused)}, prefill ${fmt.ms(chatRuns[1]!.prefillMs)}).`,
      ],
    };
  } finally {
    for (const b of backends) await b.close();
  }
}

/** Each trajectory's step texts, trajectories in key order: the same for any order the steps were generated in. */
function byTrajectory(calls: readonly { requests: readonly GenerationRequest[]; results: readonly { key: string; text: string }[] }[]): string[] {
  const steps = new Map<string, string[]>();
  for (const c of calls) for (const r of c.results) steps.set(r.key, [...(steps.get(r.key) ?? []), r.text]);
  return [...steps.keys()].sort().flatMap((k) => steps.get(k)!.map((text, i) => `${k}/${i}: ${text}`));
}

/** The peer's texts (one list over all replayed calls, in call and request order) as calls. */
function asCalls(replay: readonly GenerationRequest[][], texts: readonly string[]) {
  let at = 0;
  return replay.map((requests) => ({ requests, results: requests.map((q) => ({ key: q.key, text: texts[at++] ?? '' })) }));
}

function firstPromptTokens(run: Collected): number {
  const first = run.calls[0]?.results ?? [];
  return first.reduce((n, r) => n + r.promptTokens, 0) / Math.max(1, first.length);
}

interface Collected {
  /** The collector's wall time. */
  ms: number;
  tokens: number;
  forwardMs: number;
  backendMs: number;
  prefilled: number;
  reused: number;
  batches: number;
  steps: number;
  prefillMs: number;
  drafted: number;
  accepted: number;
  calls: RecordingBackend['calls'];
}

/** One collection per backend, in an order that rotates with `rep`, so drift in the machine's load spreads over all of them. */
async function collectEach(plan: GenerationPlan, backends: readonly OnnxBackend[], runs: Collected[][], rep: number, prompts?: PromptInput[]): Promise<void> {
  for (let i = 0; i < backends.length; i++) {
    const v = (i + rep) % backends.length;
    runs[v]!.push(await collectOnce(plan, backends[v]!, prompts));
  }
}

/**
 * One collection with the real collector on a fresh temp project (prompts imported, round
 * opened), the backend's prefix cache emptied first: every collection starts cold.
 */
async function collectOnce(plan: GenerationPlan, backend: OnnxBackend, prompts: PromptInput[] = benchPrompts(plan), template?: object): Promise<Collected> {
  const t = plan.trajectory;
  const root = mkdtempSync(join(tmpdir(), 'aries-bench-collect-'));
  try {
    if (template) writeFileSync(join(root, 'refinement.json'), JSON.stringify(template));
    writeFileSync(join(root, 'aries.json'), JSON.stringify({ name: 'bench', model: plan.model.dir, ...(template ? { refinementTemplate: 'refinement.json' } : {}) }));
    writeFileSync(join(root, 'prompts.jsonl'), prompts.map((prompt, i) => JSON.stringify({ id: `q${i}`, prompt })).join('\n') + '\n');
    const p = openProject(root, silentLogger);
    try {
      importPrompts(p.db, join(root, 'prompts.jsonl'));
      const round = openRound(p);
      const owner = { kind: 'round' as const, id: round.id };
      createTrajectories(p.db, owner, Array.from({ length: t.prompts }, (_, i) => `q${i}`), round.policy_model_id);
      backend.clearPrefixCache();
      const recorder = new RecordingBackend(backend);
      const before = backend.stats;
      const started = performance.now();
      await collectTrajectories(p.db, owner, recorder, p.template, {
        refinements: t.refinements,
        sampling: { temperature: t.temperature ?? 0, topP: 1, topK: 0, maxNewTokens: t.maxNewTokens, stop: [] },
        seedBase: 1,
        stopWhenRepeated: false,
        chunkSize: t.batchSize,
        modelId: round.policy_model_id,
      });
      const ms = performance.now() - started;
      const after = backend.stats;
      const tokens = recorder.calls.reduce((n, c) => n + c.results.reduce((m, r) => m + r.completionTokens, 0), 0);
      return {
        ms, tokens, forwardMs: after.forwardMs - before.forwardMs, backendMs: after.totalMs - before.totalMs,
        prefilled: after.prefilledTokens - before.prefilledTokens, reused: after.reusedTokens - before.reusedTokens,
        batches: after.batches - before.batches, steps: after.steps - before.steps, prefillMs: after.prefillMs - before.prefillMs,
        drafted: after.draftedTokens - before.draftedTokens, accepted: after.acceptedTokens - before.acceptedTokens, calls: recorder.calls,
      };
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

