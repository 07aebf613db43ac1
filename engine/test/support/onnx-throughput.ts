import { GREEDY, type GenerationRequest } from '../../src/generation/backend';
import { OnnxBackend } from '../../src/generation/onnx/backend';
import { tinyModel } from './tiny-model';

/**
 * Tokens per second of OnnxBackend and the share of time inside session.run, per batch size,
 * greedy and sampled (best of 3 runs: shared machines are noisy). Not a test; run it by hand:
 *   node --import tsx engine/test/support/onnx-throughput.ts [MODEL_DIR] [--threads N] [--batches 1,32,64] [--new 64]
 * Without MODEL_DIR it uses the test model (bundled, or trained and cached by tiny-model.ts).
 */

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
}

const WORDS = ['red', 'green', 'blue', 'cat', 'dog', 'sun', 'moon', 'tree'];

function requests(n: number, maxNewTokens: number, sampled: boolean): GenerationRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `r${i}`,
    prompt: i % 2 ? `${i % 20}+${(i * 7) % 20}=` : `repeat: ${WORDS[i % 8]} ${WORDS[(i * 3 + 1) % 8]} ${WORDS[(i * 5 + 2) % 8]}`,
    sampling: { ...GREEDY, maxNewTokens, seed: i, ...(sampled ? { temperature: 0.8, topP: 0.9, topK: 50 } : {}) },
  }));
}

async function main(): Promise<void> {
  const positional = process.argv[2] && !process.argv[2].startsWith('--') ? process.argv[2] : undefined;
  const found = positional ? { dir: positional } : tinyModel();
  if (!found.dir) throw new Error(found.skip);
  const threads = Number(flag('threads', '1'));
  const maxNewTokens = Number(flag('new', '64'));
  console.log(`model ${found.dir}, intraOpNumThreads ${threads}, maxNewTokens ${maxNewTokens}`);
  for (const batchSize of flag('batches', '1,32,64').split(',').map(Number)) {
    for (const sampled of [false, true]) {
      const backend = await OnnxBackend.open({ modelDir: found.dir, batchSize, intraOpNumThreads: threads });
      const work = requests(Math.max(2 * batchSize, 8), maxNewTokens, sampled);
      await backend.generate(work.slice(0, 4)); // warm-up
      let best = { wallMs: Infinity, forwardMs: 0, tokens: 0 };
      for (let rep = 0; rep < 3; rep++) {
        const before = backend.stats;
        const started = performance.now();
        await backend.generate(work);
        const wallMs = performance.now() - started;
        const after = backend.stats;
        if (wallMs < best.wallMs) best = { wallMs, forwardMs: after.forwardMs - before.forwardMs, tokens: after.generatedTokens - before.generatedTokens };
      }
      await backend.close();
      const { wallMs, forwardMs, tokens } = best;
      console.log(
        `batch ${String(batchSize).padStart(3)} ${sampled ? 'sampled' : 'greedy '}: ${String(tokens).padStart(5)} tokens, ${((tokens / wallMs) * 1000).toFixed(0).padStart(6)} tokens/s, ` +
          `session.run ${((100 * forwardMs) / wallMs).toFixed(0)}% of the time, total/forward ${(wallMs / forwardMs).toFixed(2)}x`,
      );
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
