import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { join } from 'node:path';
import { badInput } from '../../errors';
import type { ChatMessage, PromptInput } from '../backend';
import { isObject, type JsonObject, type ModelFolder } from './model-folder';

/**
 * The model's own tokenizer (tokenizer.json through @huggingface/tokenizers) and chat template
 * (through @huggingface/jinja, rendered the way `transformers` and aries_trainer.chat_template do).
 * A string prompt becomes one user message when the model has a chat template.
 */
export class ModelTokenizer {
  readonly eosTokenIds: ReadonlySet<number>;
  readonly padTokenId: number;
  private readonly tokenizer: Tokenizer;
  private readonly template: Template | undefined;
  private readonly specialTokens: Record<string, string>;

  constructor(folder: ModelFolder) {
    const tokenizerPath = join(folder.dir, 'tokenizer.json');
    try {
      this.tokenizer = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
    } catch (err) {
      throw badInput(`${tokenizerPath}: @huggingface/tokenizers cannot load it (${(err as Error).message})`);
    }
    const configPath = join(folder.dir, 'tokenizer_config.json');
    try {
      this.template = folder.chatTemplate === undefined ? undefined : new Template(folder.chatTemplate);
    } catch (err) {
      throw badInput(`${configPath}: the chat_template does not parse (${(err as Error).message})`);
    }
    this.specialTokens = specialTokens(folder.tokenizerConfig);

    const eos = new Set(folder.eosTokenIds);
    const eosToken = this.specialTokens.eos_token;
    const eosId = eosToken === undefined ? undefined : this.tokenizer.token_to_id(eosToken);
    if (eosId !== undefined) eos.add(eosId);
    if (eos.size === 0) {
      throw badInput(`${configPath}: no eos_token (and no eos_token_id in config.json or generation_config.json)`, 'generation would never stop before max_new_tokens; set eos_token');
    }
    this.eosTokenIds = eos;
    const padToken = this.specialTokens.pad_token;
    // Pad ids only fill masked positions, so any id works; prefer the model's own.
    this.padTokenId = (padToken === undefined ? undefined : this.tokenizer.token_to_id(padToken)) ?? folder.padTokenId ?? [...eos][0]!;
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** The text the model conditions on: the chat template with add_generation_prompt, or the string itself. */
  promptText(prompt: PromptInput): string {
    if (this.template === undefined) {
      if (typeof prompt === 'string') return prompt;
      throw badInput('this model has no chat_template in tokenizer_config.json, so prompts must be strings, not chat messages');
    }
    const messages: ChatMessage[] = typeof prompt === 'string' ? [{ role: 'user', content: prompt }] : prompt;
    return this.renderChat(messages, true);
  }

  renderChat(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    if (this.template === undefined) throw badInput('this model has no chat_template in tokenizer_config.json');
    return this.template.render({ ...this.specialTokens, messages, add_generation_prompt: addGenerationPrompt });
  }

  /** Token ids of text as it is: special tokens in the text are matched, none are added (as the trainer does). */
  encode(text: string): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[]): string {
    if (ids.length === 0) return ''; // @huggingface/tokenizers refuses an empty list
    // No clean-up of spaces before punctuation: the text must re-encode to what the model produced,
    // and incremental decoding relies on a longer id list decoding to a longer string.
    return this.tokenizer.decode(ids as number[], { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }
}

/** eos_token, bos_token, ... as strings; tokenizer_config.json may hold them as AddedToken objects. */
function specialTokens(config: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = config[key];
    if (typeof v === 'string') out[key] = v;
    else if (isObject(v) && typeof v.content === 'string') out[key] = v.content;
  }
  return out;
}
