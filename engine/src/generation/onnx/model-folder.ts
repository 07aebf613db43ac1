import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { badInput } from '../../errors';

/**
 * A local model folder in the Hugging Face / optimum decoder layout: config.json, tokenizer.json,
 * tokenizer_config.json, optional generation_config.json and chat_template.jinja, and the graph in
 * onnx/model.onnx (the transformers.js layout) or model.onnx (what `optimum-cli export onnx` writes).
 * Reading it checks everything that can be checked without onnxruntime; every error names the file.
 */

/** What the decoding loop needs to know about the network's shape (from config.json). */
export interface DecoderShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  vocabSize: number | undefined;
  /** Longest prompt + completion the model was built for; undefined when config.json does not say. */
  maxPositions: number | undefined;
}

export type JsonObject = Record<string, unknown>;

export interface ModelFolder {
  dir: string;
  modelPath: string;
  configPath: string;
  /** config.json as it is (e.g. num_labels, architectures for a reward model). */
  config: JsonObject;
  shape: DecoderShape;
  tokenizerJson: JsonObject;
  tokenizerConfig: JsonObject;
  /** chat_template from tokenizer_config.json or chat_template.jinja; undefined when there is none. */
  chatTemplate: string | undefined;
  /** eos_token_id from generation_config.json and config.json (ids, possibly several). */
  eosTokenIds: number[];
  padTokenId: number | undefined;
}

/** Graph files looked for, in order. */
export const MODEL_FILES = ['onnx/model.onnx', 'model.onnx', 'onnx/decoder_model_merged.onnx', 'decoder_model_merged.onnx'];

/** The int8 graph (`python -m aries_trainer quantize`; transformers.js and optimum name it so too). */
export const QUANTIZED_FILES = ['onnx/model_quantized.onnx', 'model_quantized.onnx'];

/** Which weights the onnx backend runs: the exported graph, or its int8 quantization. */
export type OnnxWeights = 'fp32' | 'int8';

/** The slot-cache graph (`python -m aries_trainer export-slots`; trained rounds get one): the cache is an input only. */
export const SLOTS_FILE = 'onnx/model_slots.onnx';

/**
 * Which fp32 graph: 'auto' runs onnx/model_slots.onnx when the folder has one, else optimum's;
 * 'slots' requires it; 'present' always runs optimum's (the cache returned whole each step).
 */
export type OnnxCacheGraph = 'auto' | 'slots' | 'present';

const FIX_HINT = 'export the model with `python -m aries_trainer export` (tiny models) or `optimum-cli export onnx --task text-generation-with-past`';

/** exportHint: what to do when the folder has no graph (the decoder export by default). */
export function readModelFolder(dirInput: string, exportHint = FIX_HINT, weights: OnnxWeights = 'fp32', cacheGraph: OnnxCacheGraph = 'auto'): ModelFolder {
  const dir = resolve(dirInput);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw badInput(`${dir}: the model folder does not exist`, 'set the model folder to a folder holding config.json, tokenizer.json and onnx/model.onnx');
  }
  const slots = weights === 'fp32' && cacheGraph !== 'present' && existsSync(join(dir, SLOTS_FILE));
  if (cacheGraph === 'slots' && !slots) {
    throw badInput(
      `${join(dir, SLOTS_FILE)}: missing; generation.onnxCache is "slots" but the folder has no slot-cache graph${weights === 'int8' ? ' (and int8 weights run optimum\'s graph)' : ''}`,
      `run \`python -m aries_trainer export --model_name_or_path ${dir}\` (Llama, Mistral and Qwen2 checkpoints; trained rounds get one by themselves), or set generation.onnxCache to "auto"`,
    );
  }
  const modelFile = slots ? SLOTS_FILE : (weights === 'int8' ? QUANTIZED_FILES : MODEL_FILES).find((f) => existsSync(join(dir, f)));
  if (!modelFile && weights === 'int8') {
    throw badInput(`${join(dir, QUANTIZED_FILES[0]!)}: missing; generation.onnxWeights is "int8" but the folder has no quantized graph`, `run \`python -m aries_trainer quantize --model_name_or_path ${dir}\` (trained rounds get one by themselves), or set generation.onnxWeights to "fp32"`);
  }
  if (!modelFile) throw badInput(`${join(dir, 'onnx/model.onnx')}: missing; the folder has no ONNX graph (also looked for model.onnx)`, exportHint);

  const configPath = join(dir, 'config.json');
  const config = readJsonObject(configPath, 'the model folder needs the config.json that was exported with the model');
  const tokenizerPath = join(dir, 'tokenizer.json');
  const tokenizerJson = readJsonObject(tokenizerPath, 'copy tokenizer.json from the model the graph was exported from');
  const tokenizerConfigPath = join(dir, 'tokenizer_config.json');
  const tokenizerConfig = readJsonObject(tokenizerConfigPath, 'copy tokenizer_config.json from the model the graph was exported from');
  const generationPath = join(dir, 'generation_config.json');
  const generation = existsSync(generationPath) ? readJsonObject(generationPath, '') : {};

  return {
    dir,
    modelPath: join(dir, modelFile),
    configPath,
    config,
    shape: decoderShape(config, configPath),
    tokenizerJson,
    tokenizerConfig,
    chatTemplate: chatTemplate(dir, tokenizerConfig, tokenizerConfigPath),
    eosTokenIds: [...new Set([...tokenIds(generation.eos_token_id), ...tokenIds(config.eos_token_id)])],
    padTokenId: tokenIds(generation.pad_token_id)[0] ?? tokenIds(config.pad_token_id)[0],
  };
}

function readJsonObject(path: string, hint: string): JsonObject {
  if (!existsSync(path)) throw badInput(`${path}: missing`, hint || undefined);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw badInput(`${path}: not valid JSON (${(err as Error).message})`, hint || undefined);
  }
  if (!isObject(data)) throw badInput(`${path}: must hold a JSON object`, hint || undefined);
  return data;
}

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Layer / head counts under the names Llama, Qwen2, Mistral, Phi (…) and GPT-2-style configs use. */
function decoderShape(config: JsonObject, path: string): DecoderShape {
  const pick = (...keys: string[]): number | undefined => {
    for (const key of keys) {
      const v = config[key];
      if (v !== undefined && v !== null) {
        if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw badInput(`${path}: "${key}" is ${JSON.stringify(v)}; it must be a positive integer`);
        return v;
      }
    }
    return undefined;
  };
  const layers = pick('num_hidden_layers', 'n_layer', 'num_layers');
  if (layers === undefined) {
    throw badInput(`${path}: no "num_hidden_layers"; the onnx backend needs the layer count to feed the key/value cache`, 'use the config.json the model was exported with');
  }
  const heads = pick('num_attention_heads', 'n_head');
  const kvHeads = pick('num_key_value_heads', 'n_head_kv', 'multi_query_group_num') ?? heads;
  const hidden = pick('hidden_size', 'n_embd', 'd_model');
  const headDim = pick('head_dim') ?? (hidden !== undefined && heads !== undefined ? hidden / heads : undefined);
  if (kvHeads === undefined || headDim === undefined || !Number.isInteger(headDim)) {
    throw badInput(`${path}: cannot tell the key/value shape; it needs "num_key_value_heads" (or "num_attention_heads") and "head_dim" (or "hidden_size")`);
  }
  return { layers, kvHeads, headDim, vocabSize: pick('vocab_size'), maxPositions: pick('max_position_embeddings', 'n_positions', 'seq_length') };
}

function chatTemplate(dir: string, tokenizerConfig: JsonObject, path: string): string | undefined {
  const t = tokenizerConfig.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    // Some models ship named templates: [{name: 'default', template}, {name: 'tool_use', ...}].
    const named = t.filter(isObject);
    const chosen = named.find((x) => x.name === 'default') ?? named[0];
    if (chosen && typeof chosen.template === 'string') return chosen.template;
    throw badInput(`${path}: "chat_template" is a list without a usable {"name", "template"} entry`);
  }
  if (t !== undefined && t !== null) throw badInput(`${path}: "chat_template" must be a string`);
  const jinjaPath = join(dir, 'chat_template.jinja');
  return existsSync(jinjaPath) ? readFileSync(jinjaPath, 'utf8') : undefined;
}

function tokenIds(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}
