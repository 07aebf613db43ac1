import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { PYTHON, REPO_ROOT } from '../test/support/tiny-model';
import { endToEndBench } from './end-to-end';
import { demoGenerationBench, generationBench, type GenerationPlan } from './generation';
import { machineInfo } from './measure';
import { benchDecoder, prefillDecoder, smallModel, withSlotGraph, type BenchModel } from './models';
import { openaiBench, type OpenAIPlan } from './openai';
import { int8Bench, type Int8Plan } from './int8';
import { realServerBench, type ServerPlan } from './real-server';
import { generatedBlock, skipped, terminalTable, writeReport, type SectionResult } from './report';
import { storeBench, sqliteCliVersion, type StorePlan } from './store';
import { loraMemoryBench, trainerBench } from './trainer';

/**
 * `npm run bench [-- [--quick] [--only generation,int8,openai,server,store,trainer,e2e] [--threads N] [--write] [--out FILE]]`
 * Runs the benchmarks, prints the table and writes docs/benchmarks.md (a quick run writes to the
 * OS temp folder unless --write is given). Not part of `npm test`: targets are checked by the
 * ratios printed here, never by timed tests.
 */

const SECTIONS = ['generation', 'int8', 'openai', 'server', 'store', 'trainer', 'e2e'] as const;
type SectionName = (typeof SECTIONS)[number];

const USAGE = `usage: npm run bench [-- [--quick] [--only ${SECTIONS.join(',')}] [--threads N] [--write] [--out FILE]]`;

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

interface Plans {
  generation: {
    small: Omit<GenerationPlan, 'model' | 'threads'>;
    decoder: Omit<GenerationPlan, 'model' | 'threads'>;
    /** The example project's own generation settings (examples/arithmetic/aries.json). */
    demo: { prompts: number; batchSize: number; refinements: number; maxNewTokens: number; temperature: number; reps: number };
  };
  openai: OpenAIPlan;
  server: ServerPlan;
  int8: Int8Plan;
  store: StorePlan;
  trainer: { steps: number; pairs: number };
}

/** Full sizes fit in about ten minutes on a 2-core machine; --quick checks that everything runs. */
function plans(quick: boolean): Plans {
  if (quick) {
    return {
      generation: {
        small: { reps: 1, trajectoryReps: 1, single: { prompts: 3, maxNewTokens: 32 }, trajectory: { prompts: 16, batchSize: 8, refinements: 1, maxNewTokens: 32, sequentialSample: 4, kind: 'short' }, trajectoryTarget: 1.5 },
        decoder: { reps: 1, trajectoryReps: 1, single: { prompts: 2, maxNewTokens: 8 }, trajectory: { prompts: 8, batchSize: 4, refinements: 1, maxNewTokens: 16, sequentialSample: 2, kind: 'long' }, trajectoryTarget: 3 },
        demo: { prompts: 32, batchSize: 64, refinements: 3, maxNewTokens: 32, temperature: 0.3, reps: 1 },
      },
      openai: { reps: 1, cases: [{ latencyMs: 50, concurrency: 8, requests: 80 }] },
      server: { prompts: 8, maxNewTokens: 16, concurrency: 4, batchSize: 8, reps: 1 },
      int8: { prompts: 8, maxNewTokens: 16, batchSize: 8, reps: 1 },
      store: { steps: 20_000, stepsPerTrajectory: 4, batch: 64, reps: 1 },
      trainer: { steps: 3, pairs: 16 },
    };
  }
  return {
    generation: {
      small: { reps: 3, trajectoryReps: 3, single: { prompts: 12, maxNewTokens: 64 }, trajectory: { prompts: 128, batchSize: 32, refinements: 3, maxNewTokens: 48, sequentialSample: 8, kind: 'short' }, trajectoryTarget: 1.5 },
      // ~300-token prompts on a 50M model: prefill matters, and each collection takes minutes here.
      decoder: { reps: 2, trajectoryReps: 1, single: { prompts: 3, maxNewTokens: 32 }, trajectory: { prompts: 16, batchSize: 8, refinements: 3, maxNewTokens: 64, sequentialSample: 2, kind: 'long' }, trajectoryTarget: 3 },
      demo: { prompts: 512, batchSize: 64, refinements: 3, maxNewTokens: 32, temperature: 0.3, reps: 2 },
    },
    openai: {
      reps: 3,
      cases: [
        { latencyMs: 500, concurrency: 32, requests: 192, clients: true },
        { latencyMs: 1000, concurrency: 256, requests: 768, clients: true },
        { latencyMs: 20, concurrency: 64, requests: 2000, clients: true },
      ],
    },
    server: { prompts: 64, maxNewTokens: 48, concurrency: 8, batchSize: 32, reps: 3 },
    int8: { prompts: 64, maxNewTokens: 48, batchSize: 32, reps: 3 },
    store: { steps: 1_000_000, stepsPerTrajectory: 4, batch: 64, reps: 1 },
    trainer: { steps: 12, pairs: 64 },
  };
}

function versions(): Record<string, string> {
  const pkg = (name: string) => (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  const db = new Database(':memory:');
  const sqlite = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  db.close();
  const torch = spawnSync(PYTHON, ['-c', 'import sys, torch; print(sys.version.split()[0], torch.__version__)'], { encoding: 'utf8' });
  const [python, torchVersion] = torch.status === 0 ? torch.stdout.trim().split(' ') : ['?', 'not importable'];
  return {
    Node: process.version,
    'onnxruntime-node': pkg('onnxruntime-node'),
    '@huggingface/transformers': pkg('@huggingface/transformers'),
    'better-sqlite3': `${pkg('better-sqlite3')} (SQLite ${sqlite})`,
    'sqlite3 shell': sqliteCliVersion() ?? 'not installed',
    [`Python (${PYTHON})`]: python ?? '?',
    torch: torchVersion ?? '?',
  };
}

const SKELETON = `# Benchmarks

Generated by \`npm run bench\` (engine/bench/); the block between the markers is rewritten by each full run.

`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      threads: { type: 'string', default: '1' },
      write: { type: 'boolean', default: false },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : [...SECTIONS];
  const unknown = only.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0) {
    process.stderr.write(`unknown section(s) ${unknown.join(', ')}\n${USAGE}\n`);
    return 2;
  }
  const threads = Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1) {
    process.stderr.write(`--threads must be a whole number ≥ 1\n${USAGE}\n`);
    return 2;
  }
  const quick = values.quick === true;
  const plan = plans(quick);
  const machine = machineInfo();
  const started = performance.now();
  const sections: Record<string, SectionResult> = {};
  const run = async (name: SectionName, title: string, fn: () => Promise<SectionResult>) => {
    if (!only.includes(name)) return;
    log(`${title}`);
    try {
      sections[title] = await fn();
    } catch (err) {
      log(`${title} failed: ${(err as Error).stack ?? String(err)}`);
      sections[title] = { findings: [skipped(title, 'failed', (err as Error).message.split('\n')[0] ?? 'error')], notes: [] };
    }
  };

  await run('generation', 'Local generation (onnx backend vs transformers.js)', async () => {
    const out: SectionResult = { findings: [], notes: [] };
    const models: [BenchModel | { skip: string }, Omit<GenerationPlan, 'model' | 'threads'>][] = [
      [smallModel(), plan.generation.small],
      [prefillDecoder(log), plan.generation.decoder],
    ];
    for (const [model, sizes] of models) {
      if ('skip' in model) {
        out.findings.push(skipped('generation', 'model', model.skip));
        continue;
      }
      const r = await generationBench({ model: withSlotGraph(model, log), threads, ...sizes }, log);
      out.findings.push(...r.findings);
      out.notes.push(...r.notes);
    }
    const bundled = smallModel();
    if (!('skip' in bundled) && bundled.name === 'bundled') {
      log(`  bundled: the demo's generation, ${plan.generation.demo.prompts} prompts, before and after`);
      const r = await demoGenerationBench(withSlotGraph(bundled, log), plan.generation.demo, threads, log);
      out.findings.push(...r.findings);
      out.notes.push(...r.notes);
    }
    return out;
  });
  await run('int8', 'int8 weights (onnx backend, int8 vs fp32)', async () => {
    const model = smallModel();
    if ('skip' in model) return { findings: [skipped('int8 weights', 'model', model.skip)], notes: [] };
    const decoder = benchDecoder(log);
    return int8Bench('skip' in decoder ? [model] : [model, decoder], plan.int8, log);
  });
  await run('openai', 'OpenAI-compatible backend', () => openaiBench(plan.openai, log));
  await run('server', 'Real OpenAI-compatible server (transformers serve vs the onnx backend)', async () => {
    const model = smallModel();
    if ('skip' in model) return { findings: [skipped('real server', 'model', model.skip)], notes: [] };
    return realServerBench(model, plan.server, log);
  });
  await run('store', 'Store', () => storeBench(plan.store, log));
  await run('trainer', 'Trainer', async () => {
    const model = smallModel();
    if ('skip' in model) return { findings: [skipped('trainer', 'DPO step', model.skip)], notes: [] };
    const speed = await trainerBench({ model, ...plan.trainer }, log);
    const decoder = benchDecoder(log);
    const memory = loraMemoryBench('skip' in decoder ? [model] : [model, decoder], plan.trainer.steps, plan.trainer.pairs, log);
    return { findings: [...speed.findings, ...memory.findings], notes: [...speed.notes, ...memory.notes] };
  });
  await run('e2e', 'End to end', () => (quick ? Promise.resolve({ findings: [skipped('end to end', 'aries run --rounds 1', 'not in a quick run')], notes: [] }) : endToEndBench(log)));

  const findings = Object.values(sections).flatMap((s) => s.findings);
  const wallSeconds = (performance.now() - started) / 1000;
  process.stdout.write(`\n${terminalTable(findings)}\n\n${Math.round(wallSeconds)} s\n`);
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const block = generatedBlock({ command, quick, machine, versions: versions(), wallSeconds, sections });
  const target = values.out ?? (quick && !values.write ? join(tmpdir(), 'aries-benchmarks-quick.md') : join(REPO_ROOT, 'docs/benchmarks.md'));
  writeReport(target, block, SKELETON);
  log(`report written to ${target}`);
  return findings.some((f) => f.subject === 'failed') ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
