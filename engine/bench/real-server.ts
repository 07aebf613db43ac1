import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GenerationBackend, GenerationRequest, GenerationResult } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import type { ModelTokenizer } from '../src/generation/onnx/tokenizer';
import { OpenAIBackend } from '../src/generation/openai/backend';
import { servableCopy, startTransformersServe, transformersServeUnavailable } from '../test/support/transformers-serve';
import { fmt, median } from './measure';
import type { BenchModel } from './models';
import { info, skipped, type SectionResult } from './report';

/**
 * A real OpenAI-compatible server against the engine's local backend, same model, same run:
 * `transformers serve` (the pinned venv's, PyTorch on CPU, one thread) serving the checkpoint,
 * driven by the engine's `openai` backend, vs the engine's ONNX backend (onnxruntime-node, one
 * thread) on that checkpoint's ONNX export. The same chat prompts (sums in the bundled task's
 * wording), temperature 1, per-request seeds. Tokens are counted the same way for both — the
 * answer's text re-tokenized with the model's tokenizer, plus the eos of an answer that ended —
 * because transformers serve reports no usage.
 */
export interface ServerPlan {
  prompts: number;
  maxNewTokens: number;
  /** Requests the engine keeps in flight against the server. */
  concurrency: number;
  /** The ONNX backend's batch. */
  batchSize: number;
  reps: number;
}

const SECTION = 'real server';

function requests(n: number, maxNewTokens: number, rep: number): GenerationRequest[] {
  return Array.from({ length: n }, (_, i) => {
    const a = 10 + ((i * 37 + 11) % 90);
    const b = 10 + ((i * 53 + 29) % 90);
    return { key: `b${i}`, prompt: [{ role: 'user', content: `Compute ${a}+${b}.` }], sampling: { temperature: 1, topP: 1, topK: 0, maxNewTokens, stop: [], seed: 1000 * rep + i } };
  });
}

async function timed(backend: GenerationBackend, batch: GenerationRequest[], tokenizer: ModelTokenizer): Promise<{ seconds: number; tokens: number; results: GenerationResult[] }> {
  const started = performance.now();
  const results = await backend.generate(batch);
  const seconds = (performance.now() - started) / 1000;
  const tokens = results.reduce((sum, r) => sum + tokenizer.encode(r.text).length + (r.finishReason === 'stop' ? 1 : 0), 0);
  return { seconds, tokens, results };
}

export async function realServerBench(model: BenchModel, plan: ServerPlan, log: (line: string) => void): Promise<SectionResult> {
  const why = transformersServeUnavailable();
  if (why) return { findings: [skipped(SECTION, 'transformers serve', why)], notes: [] };
  const work = mkdtempSync(join(tmpdir(), 'aries-bench-server-'));
  const served = servableCopy(model.dir, join(work, 'model'));
  log(`${SECTION}: starting transformers serve on ${model.name}`);
  const server = await startTransformersServe(served);
  const remote = new OpenAIBackend({ baseUrl: server.baseUrl, model: server.model, maxConcurrency: plan.concurrency, requestTimeoutMs: 120_000 });
  const local = await OnnxBackend.open({ modelDir: served, batchSize: plan.batchSize, intraOpNumThreads: 1 });
  try {
    const runs: { server: { seconds: number; tokens: number }; onnx: { seconds: number; tokens: number } }[] = [];
    // One unmeasured pass each: the server's first requests and onnxruntime's first runs are slow.
    await remote.generate(requests(4, plan.maxNewTokens, 99));
    await local.generate(requests(4, plan.maxNewTokens, 99));
    for (let rep = 0; rep < plan.reps; rep++) {
      const batch = requests(plan.prompts, plan.maxNewTokens, rep);
      const s = await timed(remote, batch, local.tokenizer);
      const o = await timed(local, batch, local.tokenizer);
      runs.push({ server: s, onnx: o });
      log(`${SECTION}: rep ${rep + 1}/${plan.reps}: server ${fmt.num(s.seconds, 2)} s (${s.tokens} tokens), onnx ${fmt.num(o.seconds, 2)} s (${o.tokens} tokens)`);
    }
    const rps = (x: { seconds: number }) => plan.prompts / x.seconds;
    const tps = (x: { seconds: number; tokens: number }) => x.tokens / x.seconds;
    const serverRps = median(runs.map((r) => rps(r.server)));
    const onnxRps = median(runs.map((r) => rps(r.onnx)));
    const serverTps = median(runs.map((r) => tps(r.server)));
    const onnxTps = median(runs.map((r) => tps(r.onnx)));
    return {
      findings: [
        info(SECTION, `${model.name} · requests/s, onnx backend / transformers serve`, `${fmt.num(onnxRps, 1)} req/s`, `${fmt.num(serverRps, 1)} req/s`, onnxRps / serverRps),
        info(SECTION, `${model.name} · tokens/s, onnx backend / transformers serve`, `${fmt.int(onnxTps)} tok/s`, `${fmt.int(serverTps)} tok/s`, onnxTps / serverTps),
      ],
      notes: [
        `- ${model.description}: ${plan.prompts} chat prompts ("Compute a+b."), temperature 1, ≤ ${plan.maxNewTokens} new tokens, median of ${plan.reps}. ` +
          `Server: \`transformers serve --device cpu --dtype float32 --force_model\` (PyTorch, OMP_NUM_THREADS=1), the model's chat template applied by the server, driven by the engine's openai backend with ${plan.concurrency} requests in flight (it streams every answer, whatever is asked). ` +
          `Engine: the onnx backend, batch ${plan.batchSize}, one onnxruntime thread. Tokens: each answer re-tokenized (+ eos), since the server reports no usage.`,
      ],
    };
  } finally {
    await local.close();
    await remote.close();
    await server.close();
    rmSync(work, { recursive: true, force: true });
  }
}
