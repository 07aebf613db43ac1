import type { ChatMessage, FinishReason, SamplingParams } from '../backend';
import { malformed } from './http';

/**
 * The OpenAI-compatible wire format as vLLM, llama.cpp server, Ollama and SGLang speak it: request
 * bodies for /chat/completions and /completions, and the checks that turn their answers (`unknown`
 * JSON) into typed values or a MalformedResponse saying what was missing.
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

export type ApiMode = 'chat' | 'completions';

/**
 * Sampling as the servers name it. `top_k` is not in OpenAI's API but vLLM, SGLang and llama.cpp
 * read it (Ollama ignores it); it is sent only when on, since "off" is -1 on older vLLM and 0
 * elsewhere. `seed` is per request, which vLLM and llama.cpp honour.
 */
export function samplingFields(s: SamplingParams, sendStop = true): JsonObject {
  const fields: JsonObject = { temperature: s.temperature, top_p: s.topP, max_tokens: s.maxNewTokens, seed: s.seed };
  if (s.topK > 0) fields.top_k = s.topK;
  if (sendStop && s.stop.length > 0) fields.stop = [...s.stop];
  return fields;
}

/**
 * The text before the first stop string, as a server that honours `stop` returns it (the stop
 * string itself left out); undefined when none occurs. Applied to every answer, so a server that
 * ignores `stop` (or is not sent it: serverStop false) gives the same text as one that does not.
 */
export function cutAtStop(text: string, stop: readonly string[]): string | undefined {
  let cut = -1;
  for (const s of stop) {
    if (s === '') continue;
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut < 0 ? undefined : text.slice(0, cut);
}

/** `extra` (the user's extra fields) goes first, so it can add fields but not replace these. */
export function requestBody(
  mode: ApiMode,
  model: string,
  prompt: string | ChatMessage[],
  sampling: SamplingParams,
  stream: boolean,
  extra: JsonObject,
  sendStop = true,
): JsonObject {
  const input: JsonObject =
    mode === 'chat'
      ? { messages: (prompt as ChatMessage[]).map((m): JsonObject => ({ role: m.role, content: m.content })) }
      : { prompt: prompt as string };
  const body: JsonObject = { ...extra, model, ...input, ...samplingFields(sampling, sendStop), stream };
  // Without this, streamed answers carry no token counts.
  if (stream) body.stream_options = { include_usage: true };
  return body;
}

export interface Completion {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
}

export interface StreamChunk {
  delta: string;
  finishReason?: FinishReason;
  usage?: { promptTokens: number; completionTokens: number };
}

/** A whole (non-streamed) answer: choices[0].message.content (chat) or choices[0].text. */
export function parseCompletion(json: unknown, mode: ApiMode): Completion {
  const choice = firstChoice(json, 'the response');
  // Strict here: a chat answer without `message` or a completion without `text` means the mode or endpoint is wrong.
  const text = mode === 'chat' ? chatContent(choice.message, 'choices[0].message') : stringField(choice, 'text', 'choices[0]', true);
  const usage = parseUsage(record(json, 'the response').usage);
  return {
    text,
    promptTokens: usage?.promptTokens ?? 0,
    completionTokens: usage?.completionTokens ?? 0,
    finishReason: finishReason(choice.finish_reason),
  };
}

/** One streamed event: a piece of text (choices[0].delta.content or choices[0].text), maybe the end, maybe usage. */
export function parseStreamChunk(json: unknown, mode: ApiMode): StreamChunk {
  const top = record(json, 'a stream event');
  rejectError(top);
  const usage = parseUsage(top.usage);
  const choices = top.choices;
  // With include_usage the last event has `choices: []` and the counts.
  if (Array.isArray(choices) && choices.length === 0) return usage ? { delta: '', usage } : { delta: '' };
  const choice = firstChoice(json, 'a stream event');
  const delta = mode === 'chat' ? chatContent(choice.delta ?? {}, 'choices[0].delta') : stringField(choice, 'text', 'choices[0]');
  const chunk: StreamChunk = { delta };
  if (choice.finish_reason !== undefined && choice.finish_reason !== null) chunk.finishReason = finishReason(choice.finish_reason);
  if (usage) chunk.usage = usage;
  return chunk;
}

/** 'length' when the token limit cut the text; everything else ('stop', 'eos', a stop string, null) is 'stop'. */
function finishReason(value: unknown): FinishReason {
  return value === 'length' ? 'length' : 'stop';
}

function parseUsage(value: unknown): { promptTokens: number; completionTokens: number } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const u = value as Record<string, unknown>;
  const prompt = typeof u.prompt_tokens === 'number' ? u.prompt_tokens : 0;
  const completion = typeof u.completion_tokens === 'number' ? u.completion_tokens : 0;
  return { promptTokens: prompt, completionTokens: completion };
}

function firstChoice(json: unknown, what: string): Record<string, unknown> {
  const top = record(json, what);
  rejectError(top);
  const choices = top.choices;
  if (!Array.isArray(choices) || choices.length === 0) {
    throw malformed(`${what} has no "choices" (keys: ${Object.keys(top).slice(0, 8).join(', ') || 'none'})`);
  }
  return record(choices[0], 'choices[0]');
}

/** Some proxies answer 200 with `{"error": ...}`. */
function rejectError(top: Record<string, unknown>): void {
  if (top.error === undefined || top.error === null) return;
  const e = top.error;
  const message = typeof e === 'string' ? e : typeof e === 'object' && typeof (e as Record<string, unknown>).message === 'string' ? (e as Record<string, unknown>).message : JSON.stringify(e);
  throw malformed(`the server answered 200 with an error: ${String(message).slice(0, 200)}`);
}

function chatContent(value: unknown, where: string): string {
  const message = record(value, where);
  const content = message.content;
  // null content happens (e.g. a reasoning-only or empty answer): that is an empty text, not an error.
  if (content === undefined || content === null) return '';
  if (typeof content !== 'string') throw malformed(`${where}.content is not a string`);
  return content;
}

function stringField(value: Record<string, unknown>, key: string, where: string, required = false): string {
  const v = value[key];
  if (required && v === undefined) throw malformed(`${where} has no "${key}"`);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw malformed(`${where}.${key} is not a string`);
  return v;
}

export function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
