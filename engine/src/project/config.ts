import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { badInput, didYouMean } from '../errors';
import { ENGINE_SET_FIELDS, TRAINER_FIELDS } from '../protocol/trainer-fields';
import { JsonReader } from './config-reader';

/** The project file, aries.json, at the root of a project folder. Paths in it are relative to that folder. */
export const PROJECT_FILE = 'aries.json';

export type BackendKind = 'onnx' | 'openai';
export type StrategyName = 'verifier' | 'rule' | 'rm';
export const STRATEGIES: readonly StrategyName[] = ['verifier', 'rule', 'rm'];
export const PAIR_KINDS = ['direct', 'refine', 'keep'] as const;
/** direct: x -> y_w over y_l; refine: refine(x, y_l) -> y_w over y_l; keep: refine(x, y_w) -> y_w over y_l. */
export type PairKind = (typeof PAIR_KINDS)[number];

export interface OpenAIConfig {
  baseUrl: string;
  model: string;
  /** Name of the environment variable holding the API key (the key itself is never stored). */
  apiKeyEnv: string;
  mode: 'chat' | 'completions';
  maxConcurrency: number;
  timeoutMs: number;
  /**
   * true (default): generation.stop is sent to the server. false: it is not sent and the engine
   * cuts each answer at the first stop string itself, for servers that mishandle `stop`
   * (`transformers serve` 4.57 fails the request; the server then runs to maxNewTokens).
   */
  serverStop: boolean;
  /** Send each phase's first request alone (servers that load a model on demand, without a lock: transformers serve). */
  loadFirst: boolean;
}

export interface GenerationConfig {
  backend: BackendKind;
  /** K: refinements after the first answer. */
  refinements: number;
  /** Train prompts sampled per round (0 = all). */
  promptsPerRound: number;
  /**
   * The fewest automatic pairs (selection.strategy) a round of `aries run` trains on: below it the
   * round collects the next promptsPerRound prompts of its seeded order and selects again, until it
   * has that many or holds every train prompt (0 = off).
   */
  minPairs: number;
  batchSize: number;
  threads: number;
  temperature: number;
  topP: number;
  topK: number;
  maxNewTokens: number;
  stop: string[];
  seed: number;
  /** End a trajectory early when a refinement repeats the previous answer. */
  stopWhenRepeated: boolean;
  /** onnx backend: 'fp32' (the exported graph) or 'int8' (onnx/model_quantized.onnx, made by the trainer's quantize). */
  onnxWeights: 'fp32' | 'int8';
  /** fp32 graphs: 'auto' decodes with onnx/model_slots.onnx when the model folder has one (the cache an input only; docs/benchmarks.md), 'present' with optimum's graph, 'slots' requires the former. */
  onnxCache: 'auto' | 'slots' | 'present';
  /** onnx backend: finished rows' slots take waiting requests while the batch runs (the next refinement step included). */
  continuousBatching: boolean;
  /** onnx backend: memory for the keys and values of finished sequences that later prompts start with (0 = off). */
  prefixCacheMiB: number;
  /** onnx backend, greedy requests: draft tokens from the request's context checked per step (0 = off). */
  speculativeTokens: number;
  openai: OpenAIConfig;
}

export interface SelectionConfig {
  /** The strategy whose pairs are exported (human overrides always win). */
  strategy: StrategyName;
  /** Strategies computed for every trajectory, so curators can see where they disagree. */
  compute: StrategyName[];
  /** rm: skip a trajectory when best - worst score is below this. */
  minMargin: number;
  /** rule: skip when the longer of chosen/rejected is more than this many times the shorter. */
  maxLengthRatio: number;
  /** rule: also skip pairs the verifier contradicts (chosen wrong while rejected right). */
  ruleGuard: 'none' | 'verifier';
  /** The 0/1 scorer that the `verifier` strategy and the rule guard read: 'verifier' (final answer) or 'verifier:solution' (worked solution). */
  verifierScorer: 'verifier' | 'verifier:solution';
  /** The scorer whose values `rm` compares. */
  rmScorer: string;
}

/** The reward models behind the scorers 'rm:onnx' and 'rm:http' (scoring.scorers). */
export interface RewardModelConfig {
  /** rm:onnx: a folder with config.json, tokenizer files and onnx/model.onnx (relative to the project folder). */
  onnxPath: string | null;
  /** rm:onnx: the logits column that is the reward; null = 0 for one label, else 1. */
  onnxLabel: number | null;
  /** rm:onnx: texts per forward pass. */
  onnxBatchSize: number;
  /** rm:http: the server root, e.g. http://127.0.0.1:8001. */
  httpUrl: string | null;
  /** rm:http: the served model name. */
  httpModel: string | null;
  httpEndpoint: 'classify' | 'pooling';
  /** rm:http: a path replacing /classify or /pooling (e.g. /v1/classify for SGLang). */
  httpEndpointPath: string | null;
  /** rm:http: 'messages' (the server applies the chat template) or 'text' (role: content lines). */
  httpInput: 'messages' | 'text';
  /** rm:http: the output column that is the reward; null = 0 for one column, else 1. */
  httpLabel: number | null;
  httpMaxConcurrency: number;
  httpTimeoutMs: number;
  /** rm:http: name of the environment variable holding the server's API key (the key itself is never stored). */
  apiKeyEnv: string;
}

export interface TrainingConfig {
  /** The trainer's Python (imports torch, transformers, accelerate); '' = discover (the project .venv, then python3 on PATH). */
  python: string;
  /** Argument list with {python} {trainer} {model} {dataset} {output_dir} {config}; null = built-in trainer. */
  command: string[] | null;
  /**
   * What the built-in trainer optimises on the exported rows: `dpo` (the ARIES objective: a DPO term
   * per row, plus the NLL term on the chosen answer when `dpo.rpo_alpha` > 0) or `sft` (the NLL term
   * alone: fine-tuning on the chosen answer of every row, after the row's prompt).
   */
  objective: TrainingObjective;
  /** Fields of the trainer's DPOConfig (see `python -m aries_trainer dpo --help`). */
  dpo: Record<string, string | number | boolean>;
  /** Fields of the trainer's SFTConfig (see `python -m aries_trainer sft --help`). */
  sft: Record<string, string | number | boolean>;
  /** How the built-in trainer is started: one process, or `accelerate launch` (several processes / GPUs). */
  launcher: TrainingLauncher;
  /**
   * accelerate's config file for launcher `accelerate`: a name shipped in engine/trainer/accelerate/
   * (cpu-ddp-2, gpu-1, gpu-ddp, deepspeed-zero3, fsdp) or a path (relative to the project folder);
   * null = accelerate's own default (`accelerate config`).
   */
  accelerateConfig: string | null;
  /** Train LoRA adapters (PEFT) instead of all weights; they are merged into each round's checkpoint. */
  lora: LoraConfig | null;
}

export const TRAINING_LAUNCHERS = ['python', 'accelerate'] as const;
export type TrainingLauncher = (typeof TRAINING_LAUNCHERS)[number];

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** Module names, or ['all-linear']. */
  targetModules: string[];
}

/** The strategies computed for every trajectory: the exported one always, then selection.compute. */
export function computedStrategies(strategy: StrategyName, compute: readonly StrategyName[]): StrategyName[] {
  return Array.from(new Set([strategy, ...compute]));
}

export const TRAINING_OBJECTIVES = ['dpo', 'sft'] as const;
export type TrainingObjective = (typeof TRAINING_OBJECTIVES)[number];

export interface EvaluationConfig {
  split: string;
  /** Held-out prompts evaluated (0 = all). */
  limit: number;
  refinements: number;
  maxNewTokens: number;
}

export interface ProjectConfig {
  name: string;
  /** The starting model: a folder (onnx backend) or the server's model name (openai). */
  model: string;
  prompts: { train: string[]; heldout: string[] };
  refinementTemplate: string | null;
  generation: GenerationConfig;
  scoring: { scorers: string[] };
  rewardModel: RewardModelConfig;
  selection: SelectionConfig;
  export: { kinds: PairKind[]; format: 'conversational' | 'string' };
  training: TrainingConfig;
  evaluation: EvaluationConfig;
}

const TOP_KEYS = ['name', 'model', 'prompts', 'refinementTemplate', 'generation', 'scoring', 'rewardModel', 'selection', 'export', 'training', 'evaluation', '$comment'] as const;

export function parseProjectConfig(source: string, value: unknown): ProjectConfig {
  const r = new JsonReader(source, value);
  r.rejectUnknown(TOP_KEYS);
  const g = r.object('generation');
  g.rejectUnknown(['backend', 'refinements', 'promptsPerRound', 'minPairs', 'batchSize', 'threads', 'temperature', 'topP', 'topK', 'maxNewTokens', 'stop', 'seed', 'stopWhenRepeated', 'onnxWeights', 'onnxCache', 'continuousBatching', 'prefixCacheMiB', 'speculativeTokens', 'openai']);
  const o = g.object('openai');
  o.rejectUnknown(['baseUrl', 'model', 'apiKeyEnv', 'mode', 'maxConcurrency', 'timeoutMs', 'serverStop', 'loadFirst']);
  const s = r.object('selection');
  s.rejectUnknown(['strategy', 'compute', 'minMargin', 'maxLengthRatio', 'ruleGuard', 'rmScorer', 'verifierScorer']);
  const strategy = s.oneOf('strategy', STRATEGIES, 'verifier');
  const compute = s.stringList('compute', ['verifier', 'rule']);
  for (const c of compute) if (!(STRATEGIES as readonly string[]).includes(c)) throw badInput(`${source}: selection.compute has unknown strategy "${c}"`, `use ${STRATEGIES.join(', ')}`);
  const e = r.object('export');
  e.rejectUnknown(['kinds', 'format']);
  const kinds = e.stringList('kinds', ['direct', 'refine']);
  for (const k of kinds) if (!(PAIR_KINDS as readonly string[]).includes(k)) throw badInput(`${source}: export.kinds has "${k}"`, 'use "direct", "refine" and/or "keep"');
  const t = r.object('training');
  t.rejectUnknown(['python', 'command', 'objective', 'dpo', 'sft', 'launcher', 'accelerateConfig', 'lora']);
  const command = t.optionalStringList('command');
  const lora = t.hasValue('lora') ? readLora(t.object('lora')) : null;
  const ev = r.object('evaluation');
  ev.rejectUnknown(['split', 'limit', 'refinements', 'maxNewTokens']);
  const rm = r.object('rewardModel');
  rm.rejectUnknown(['onnxPath', 'onnxLabel', 'onnxBatchSize', 'httpUrl', 'httpModel', 'httpEndpoint', 'httpEndpointPath', 'httpInput', 'httpLabel', 'httpMaxConcurrency', 'httpTimeoutMs', 'apiKeyEnv']);
  const p = r.object('prompts');
  p.rejectUnknown(['train', 'heldout']);
  const sc = r.object('scoring');
  sc.rejectUnknown(['scorers']);
  const refinements = g.integer('refinements', 3, 0, 16);
  const cfg: ProjectConfig = {
    name: r.string('name', 'aries-project'),
    model: r.string('model', ''),
    prompts: { train: p.stringList('train', []), heldout: p.stringList('heldout', []) },
    refinementTemplate: r.optionalString('refinementTemplate'),
    generation: {
      backend: g.oneOf('backend', ['onnx', 'openai'] as const, 'onnx'),
      refinements,
      promptsPerRound: g.integer('promptsPerRound', 0),
      minPairs: g.integer('minPairs', 0),
      batchSize: g.integer('batchSize', 32, 1, 4096),
      threads: g.integer('threads', 0, 0, 256),
      temperature: g.number('temperature', 0.8, 0, 10),
      topP: g.number('topP', 1, 0, 1),
      topK: g.integer('topK', 0),
      maxNewTokens: g.integer('maxNewTokens', 256, 1, 1_000_000),
      stop: g.stringList('stop', []),
      seed: g.integer('seed', 1234),
      stopWhenRepeated: g.boolean('stopWhenRepeated', true),
      onnxWeights: g.oneOf('onnxWeights', ['fp32', 'int8'] as const, 'fp32'),
      onnxCache: g.oneOf('onnxCache', ['auto', 'slots', 'present'] as const, 'auto'),
      continuousBatching: g.boolean('continuousBatching', false),
      prefixCacheMiB: g.integer('prefixCacheMiB', 1024, 0, 1 << 20),
      speculativeTokens: g.integer('speculativeTokens', 0, 0, 64),
      openai: {
        baseUrl: o.string('baseUrl', 'http://127.0.0.1:8000/v1'),
        model: o.string('model', ''),
        apiKeyEnv: o.string('apiKeyEnv', 'OPENAI_API_KEY'),
        mode: o.oneOf('mode', ['chat', 'completions'] as const, 'chat'),
        maxConcurrency: o.integer('maxConcurrency', 8, 1, 1024),
        timeoutMs: o.integer('timeoutMs', 120_000, 100),
        serverStop: o.boolean('serverStop', true),
        loadFirst: o.boolean('loadFirst', false),
      },
    },
    scoring: { scorers: sc.stringList('scorers', ['verifier']) },
    rewardModel: {
      onnxPath: rm.optionalString('onnxPath'),
      onnxLabel: rm.optionalInteger('onnxLabel'),
      onnxBatchSize: rm.integer('onnxBatchSize', 8, 1, 4096),
      httpUrl: rm.optionalString('httpUrl'),
      httpModel: rm.optionalString('httpModel'),
      httpEndpoint: rm.oneOf('httpEndpoint', ['classify', 'pooling'] as const, 'classify'),
      httpEndpointPath: rm.optionalString('httpEndpointPath'),
      httpInput: rm.oneOf('httpInput', ['messages', 'text'] as const, 'messages'),
      httpLabel: rm.optionalInteger('httpLabel'),
      httpMaxConcurrency: rm.integer('httpMaxConcurrency', 4, 1, 1024),
      httpTimeoutMs: rm.integer('httpTimeoutMs', 120_000, 100),
      apiKeyEnv: rm.string('apiKeyEnv', 'OPENAI_API_KEY'),
    },
    selection: {
      strategy,
      compute: computedStrategies(strategy, compute as StrategyName[]),
      minMargin: s.number('minMargin', 0, 0),
      maxLengthRatio: s.number('maxLengthRatio', 2.5, 1),
      ruleGuard: s.oneOf('ruleGuard', ['none', 'verifier'] as const, 'none'),
      rmScorer: s.string('rmScorer', 'verifier'),
      verifierScorer: s.oneOf('verifierScorer', ['verifier', 'verifier:solution'] as const, 'verifier'),
    },
    export: { kinds: kinds as PairKind[], format: e.oneOf('format', ['conversational', 'string'] as const, 'conversational') },
    training: {
      python: t.string('python', ''),
      command,
      objective: t.oneOf('objective', TRAINING_OBJECTIVES, 'dpo'),
      dpo: t.scalars('dpo'),
      sft: t.scalars('sft'),
      launcher: t.oneOf('launcher', TRAINING_LAUNCHERS, 'python'),
      accelerateConfig: t.optionalString('accelerateConfig'),
      lora,
    },
    evaluation: {
      split: ev.string('split', 'heldout'),
      limit: ev.integer('limit', 0),
      refinements: ev.integer('refinements', refinements, 0, 16),
      maxNewTokens: ev.integer('maxNewTokens', 256, 1, 1_000_000),
    },
  };
  const vs = cfg.selection.verifierScorer;
  if (vs !== 'verifier' && !cfg.scoring.scorers.includes(vs)) throw badInput(`${source}: selection.verifierScorer is "${vs}" but scoring.scorers does not compute it`, `add "${vs}" to scoring.scorers`);
  if (cfg.generation.minPairs > 0 && cfg.generation.promptsPerRound === 0) {
    throw badInput(`${source}: generation.minPairs is ${cfg.generation.minPairs} but generation.promptsPerRound is 0 (every train prompt in each round), so a round has no more prompts to collect`, 'set generation.promptsPerRound to the prompts a round starts with, or remove minPairs');
  }
  if (!cfg.model) throw badInput(`${source}: "model" is required`, 'give the starting model folder (onnx) or the server model name (openai)');
  // The built-in trainer's fields are known: a typo is reported now, not after a round generated.
  // A training.command (trl dpo, any trainer) may read other fields, so they pass as they are.
  if (command === null) for (const objective of TRAINING_OBJECTIVES) checkTrainerFields(source, objective, cfg.training[objective]);
  return cfg;
}

/** training.dpo / training.sft against the trainer's dataclass fields (protocol/trainer-fields.ts). */
function checkTrainerFields(source: string, objective: (typeof TRAINING_OBJECTIVES)[number], values: Record<string, string | number | boolean>): void {
  const known = TRAINER_FIELDS[objective];
  const help = `see \`python -m aries_trainer ${objective} --help\``;
  for (const [key, value] of Object.entries(values)) {
    const where = `${source}: training.${objective}.${key}`;
    if (ENGINE_SET_FIELDS.includes(key)) {
      const fix = key === 'refinement_template'
        ? 'remove it and name the template once, in aries.json\'s refinementTemplate: the engine passes that file to the trainer'
        : 'remove it: the run\'s model, dataset and output folder come from the project';
      throw badInput(`${where} is set by the engine for every run`, fix);
    }
    const field = known[key];
    if (!field) {
      const near = didYouMean(key, Object.keys(known));
      throw badInput(`${where}: unknown field${near ? ` (did you mean "${near}"?)` : ''}`, help);
    }
    const ok =
      field.type === 'bool' ? typeof value === 'boolean' : field.type === 'str' ? typeof value === 'string' : field.type === 'int' ? Number.isInteger(value) : typeof value === 'number' && Number.isFinite(value);
    const noun = { bool: 'true or false', str: 'a string', int: 'a whole number', float: 'a number' }[field.type];
    if (!ok) throw badInput(`${where} must be ${noun}, got ${JSON.stringify(value)}`, help);
    if (field.choices && !field.choices.includes(String(value))) throw badInput(`${where} is ${JSON.stringify(value)}; use one of ${field.choices.join(', ')}`);
  }
}

function readLora(l: JsonReader): LoraConfig {
  l.rejectUnknown(['r', 'alpha', 'dropout', 'targetModules']);
  const r = l.integer('r', 16, 1, 4096);
  return { r, alpha: l.integer('alpha', 2 * r, 1, 1_000_000), dropout: l.number('dropout', 0.05, 0, 1), targetModules: l.stringList('targetModules', ['all-linear']) };
}

export function readProjectConfig(root: string): ProjectConfig {
  const file = join(root, PROJECT_FILE);
  if (!existsSync(file)) throw badInput(`${file}: no project file here`, 'run `aries init` in this folder, or pass the folder that holds aries.json');
  let value: unknown;
  const text = readFileSync(file, 'utf8').replace(/^\uFEFF/, ''); // editors on Windows may add a BOM
  try {
    value = JSON.parse(text);
  } catch (err) {
    const { line, column, reason } = jsonErrorPlace(text, (err as Error).message);
    throw badInput(`${file}:${line}:${column}: not valid JSON (${reason})`, 'fix the file there (a missing comma or quote, a trailing comma, a comment: JSON allows none)');
  }
  return parseProjectConfig(file, value);
}

/** Where JSON.parse stopped, as line:column (1-based), and its reason without the character offset. */
export function jsonErrorPlace(text: string, message: string): { line: number; column: number; reason: string } {
  const at = /at position (\d+)/.exec(message);
  const offset = at ? Number(at[1]) : text.length; // "Unexpected end of JSON input": the end
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  const reason = message.replace(/\s*in JSON at position \d+(\s*\(line \d+ column \d+\))?/, '').replace(/^Unexpected end of JSON input$/, 'the file ends too early');
  return { line, column, reason };
}

/** A path from the project file, made absolute against the project folder. */
export function projectPath(root: string, p: string): string {
  return isAbsolute(p) ? p : resolve(root, p);
}
