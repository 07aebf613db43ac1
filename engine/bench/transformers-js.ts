import { basename, dirname } from 'node:path';
import type { ChatMessage, PromptInput } from '../src/generation/backend';

/**
 * The peer: transformers.js's text-generation pipeline on the same model folder, fully offline,
 * with the same onnxruntime session options as the engine (threads, graph optimisation, no
 * spinning), greedy. Its session.run is timed too, so its own overhead can be shown beside ours.
 */

type Chat = ChatMessage[];
interface TextGenerationOutput {
  generated_text: Chat;
}
type TextGeneration = ((input: Chat | Chat[], options: Record<string, unknown>) => Promise<TextGenerationOutput[] | TextGenerationOutput[][]>) & {
  model: { sessions: Record<string, { run: (feeds: unknown) => Promise<unknown> }> };
  dispose(): Promise<void>;
};

export interface PeerGeneration {
  /** Completion texts, special tokens skipped (the pipeline's own decoding). */
  texts: string[];
  /** Wall time of the pipeline call(s), ms. */
  ms: number;
}

export class TransformersJsPeer {
  /** Time inside session.run, summed. */
  runMs = 0;

  private constructor(private readonly pipe: TextGeneration) {}

  static async open(modelDir: string, threads: number): Promise<TransformersJsPeer> {
    const { env, pipeline } = await import('@huggingface/transformers');
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = `${dirname(modelDir)}/`;
    env.useFSCache = false;
    const options = {
      dtype: 'fp32',
      device: 'cpu',
      session_options: { intraOpNumThreads: threads, graphOptimizationLevel: 'all', executionMode: 'sequential', extra: { session: { intra_op: { allow_spinning: '0' } } } },
    };
    const pipe = (await pipeline('text-generation', basename(modelDir), options as never)) as unknown as TextGeneration;
    const peer = new TransformersJsPeer(pipe);
    for (const session of Object.values(pipe.model.sessions)) {
      const run = session.run.bind(session);
      session.run = async (feeds: unknown) => {
        const started = performance.now();
        try {
          return await run(feeds);
        } finally {
          peer.runMs += performance.now() - started;
        }
      };
    }
    return peer;
  }

  /** One pipeline call on all prompts (the pipeline left-pads them into one batch). */
  async batched(prompts: readonly PromptInput[], maxNewTokens: number): Promise<PeerGeneration> {
    const chats = prompts.map(asChat);
    const started = performance.now();
    const out = (await this.pipe(chats, { max_new_tokens: maxNewTokens, do_sample: false })) as TextGenerationOutput[][];
    const ms = performance.now() - started;
    return { texts: out.map((o) => lastContent(o[0]!)), ms };
  }

  /** One pipeline call per prompt, one after another. */
  async sequential(prompts: readonly PromptInput[], maxNewTokens: number): Promise<PeerGeneration> {
    const texts: string[] = [];
    const started = performance.now();
    for (const p of prompts) {
      const out = (await this.pipe(asChat(p), { max_new_tokens: maxNewTokens, do_sample: false })) as TextGenerationOutput[];
      texts.push(lastContent(out[0]!));
    }
    return { texts, ms: performance.now() - started };
  }

  async close(): Promise<void> {
    await this.pipe.dispose();
  }
}

/** As the engine does for models with a chat template: a string prompt is one user message. */
function asChat(p: PromptInput): Chat {
  return typeof p === 'string' ? [{ role: 'user', content: p }] : p;
}

function lastContent(o: TextGenerationOutput): string {
  return o.generated_text.at(-1)?.content ?? '';
}
