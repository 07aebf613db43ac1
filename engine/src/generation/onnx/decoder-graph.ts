import type { InferenceSession } from 'onnxruntime-node';
import { badInput } from '../../errors';
import type { DecoderShape, ModelFolder } from './model-folder';
import { openCpuSession } from './session';

/**
 * What the ONNX graph takes and gives, checked against config.json once when the model loads, so a
 * graph exported without the cache, or for another config, fails with the file and input named —
 * not with an onnxruntime shape error in the middle of a batch.
 */
export type CacheDtype = 'float32' | 'float16';

/**
 * 'present': optimum's layout, the cache goes in as past_key_values.* and comes back whole as
 * present.*. 'slots': aries_trainer's model_slots.onnx, the cache goes in as fixed-capacity
 * cache_key.* / cache_value.* buffers the caller owns and only the new tokens' columns come back
 * (new_key.* / new_value.*), for the caller to write in place.
 */
export type CacheLayout = 'present' | 'slots';

export interface DecoderGraph {
  modelPath: string;
  cacheLayout: CacheLayout;
  layers: number;
  kvHeads: number;
  headDim: number;
  /** past_key_values.{i}.key, past_key_values.{i}.value, ... in layer order (slots: cache_key.{i}, cache_value.{i}). */
  pastInputs: string[];
  /** present.{i}.key, present.{i}.value, ... in the same order (slots: new_key.{i}, new_value.{i}). */
  presentOutputs: string[];
  pastDtype: CacheDtype;
  logitsDtype: CacheDtype;
  hasPositionIds: boolean;
  /** optimum's merged decoders choose the no-cache or cache branch with this bool input. */
  hasUseCacheBranch: boolean;
  /** Newer exports can compute logits for the last position only ((num_)logits_to_keep). */
  logitsToKeepInput: string | undefined;
}

type Metadata = readonly InferenceSession.ValueMetadata[];

const REEXPORT = 're-export it with `python -m aries_trainer export` (tiny models) or `optimum-cli export onnx --task text-generation-with-past`';

export function describeDecoderGraph(inputs: Metadata, outputs: Metadata, shape: DecoderShape, modelPath: string, configPath: string): DecoderGraph {
  const inputByName = new Map(inputs.map((m) => [m.name, m]));
  const outputNames = new Set(outputs.map((m) => m.name));
  for (const name of ['input_ids', 'attention_mask']) {
    if (!inputByName.has(name)) throw badInput(`${modelPath}: the graph has no "${name}" input; it is not a Hugging Face decoder export`, REEXPORT);
  }
  if (!outputNames.has('logits')) throw badInput(`${modelPath}: the graph has no "logits" output`, REEXPORT);

  const slots = inputByName.has('cache_key.0');
  const [pastName, presentName] = slots
    ? [(i: number, kv: string) => `cache_${kv}.${i}`, (i: number, kv: string) => `new_${kv}.${i}`]
    : [(i: number, kv: string) => `past_key_values.${i}.${kv}`, (i: number, kv: string) => `present.${i}.${kv}`];
  const graphLayers = inputs.filter((m) => (slots ? /^cache_key\.\d+$/ : /^past_key_values\.\d+\.key$/).test(m.name)).length;
  if (graphLayers === 0) {
    throw badInput(`${modelPath}: the graph has no past_key_values inputs (exported without the key/value cache)`, REEXPORT);
  }
  if (graphLayers !== shape.layers) {
    throw badInput(`${modelPath}: the graph has ${graphLayers} layers of ${slots ? 'cache_key' : 'past_key_values'} but ${configPath} says num_hidden_layers = ${shape.layers}`, 'use the config.json the graph was exported with');
  }
  const pastInputs: string[] = [];
  const presentOutputs: string[] = [];
  for (let i = 0; i < shape.layers; i++) {
    for (const kv of ['key', 'value']) {
      const past = pastName(i, kv);
      const present = presentName(i, kv);
      if (!inputByName.has(past)) throw badInput(`${modelPath}: missing input "${past}"`, REEXPORT);
      if (!outputNames.has(present)) throw badInput(`${modelPath}: missing output "${present}" (the graph must return the ${slots ? "new tokens' keys and values" : 'updated cache'})`, REEXPORT);
      checkCacheDims(inputByName.get(past)!, shape, modelPath, configPath);
      pastInputs.push(past);
      presentOutputs.push(present);
    }
  }
  if (slots && !(inputByName.has('position_ids') && inputByName.has('logits_to_keep'))) {
    throw badInput(`${modelPath}: a slot-cache graph needs position_ids and logits_to_keep inputs`, 're-export it with `python -m aries_trainer export-slots`');
  }

  const known = new Set(['input_ids', 'attention_mask', 'position_ids', 'use_cache_branch', 'logits_to_keep', 'num_logits_to_keep', ...pastInputs]);
  const unknown = inputs.map((m) => m.name).filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw badInput(`${modelPath}: the graph has input${unknown.length > 1 ? 's' : ''} ${unknown.map((n) => `"${n}"`).join(', ')} that the onnx backend does not know how to feed`, 'it feeds input_ids, attention_mask, position_ids, past_key_values.*, use_cache_branch and logits_to_keep');
  }
  const pastDtype = cacheDtype(inputByName.get(pastInputs[0]!)!, modelPath);
  const logitsMeta = outputs.find((m) => m.name === 'logits')!;
  return {
    modelPath,
    cacheLayout: slots ? 'slots' : 'present',
    layers: shape.layers,
    kvHeads: shape.kvHeads,
    headDim: shape.headDim,
    pastInputs,
    presentOutputs,
    pastDtype,
    logitsDtype: cacheDtype(logitsMeta, modelPath),
    hasPositionIds: inputByName.has('position_ids'),
    hasUseCacheBranch: inputByName.has('use_cache_branch'),
    logitsToKeepInput: ['logits_to_keep', 'num_logits_to_keep'].find((n) => inputByName.has(n)),
  };
}

function cacheDtype(meta: InferenceSession.ValueMetadata, modelPath: string): CacheDtype {
  if (!meta.isTensor) return 'float32'; // metadata unavailable: assume the common case
  if (meta.type === 'float32' || meta.type === 'float16') return meta.type;
  throw badInput(`${modelPath}: "${meta.name}" is ${meta.type}; the onnx backend handles float32 and float16 models`);
}

/** [batch, kv_heads, past_len, head_dim]: numeric dims must agree with config.json. */
function checkCacheDims(meta: InferenceSession.ValueMetadata, shape: DecoderShape, modelPath: string, configPath: string): void {
  if (!meta.isTensor || meta.shape.length === 0) return;
  const [, heads, , dim] = meta.shape;
  if (meta.shape.length !== 4 || (typeof heads === 'number' && heads !== shape.kvHeads) || (typeof dim === 'number' && dim !== shape.headDim)) {
    throw badInput(
      `${modelPath}: "${meta.name}" has shape [${meta.shape.join(', ')}] but ${configPath} gives [batch, ${shape.kvHeads} key/value heads, past, ${shape.headDim} head_dim]`,
      'use the config.json the graph was exported with',
    );
  }
}

/** Loads the folder's graph on the CPU and checks its inputs and outputs against config.json. */
export async function loadDecoderSession(folder: ModelFolder, intraOpNumThreads?: number): Promise<{ session: InferenceSession; graph: DecoderGraph }> {
  const session = await openCpuSession(folder.modelPath, intraOpNumThreads);
  try {
    return { session, graph: describeDecoderGraph(session.inputMetadata, session.outputMetadata, folder.shape, folder.modelPath, folder.configPath) };
  } catch (err) {
    await session.release();
    throw err;
  }
}
