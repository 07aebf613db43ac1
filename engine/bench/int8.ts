import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GREEDY, type GenerationRequest } from '../src/generation/backend';
import { OnnxBackend } from '../src/generation/onnx/backend';
import { quantizeModel } from '../test/support/tiny-model';
import { fmt, median } from './measure';
import type { BenchModel } from './models';
import { info, type SectionResult } from './report';

/**
 * int8 weights against the exported fp32 graph, same model, same process: the onnx backend on
 * onnx/model.onnx and on onnx/model_quantized.onnx (`python -m aries_trainer quantize`:
 * onnxruntime's dynamic quantization, QInt8 weights), one thread each, the same greedy batch,
 * alternated rep by rep. Tokens/s of generated tokens, the graph's size, and how many greedy
 * answers are the same. What int8 costs in held-out accuracy is `aries eval` with
 * generation.onnxWeights "int8" vs "fp32" (docs/benchmarks.md).
 */
export interface Int8Plan {
  prompts: number;
  maxNewTokens: number;
  batchSize: number;
  reps: number;
}

const SECTION = 'int8 weights';

export async function int8Bench(models: BenchModel[], plan: Int8Plan, log: (line: string) => void): Promise<SectionResult> {
  const out: SectionResult = { findings: [], notes: [] };
  for (const model of models) {
    const work = mkdtempSync(join(tmpdir(), 'aries-bench-int8-'));
    const dir = join(work, 'model');
    try {
      cpSync(model.dir, dir, { recursive: true });
      rmSync(join(dir, 'onnx/model_quantized.onnx'), { force: true });
      quantizeModel(dir);
      const fp32 = await OnnxBackend.open({ modelDir: dir, batchSize: plan.batchSize, intraOpNumThreads: 1, cacheGraph: 'present' });
      const int8 = await OnnxBackend.open({ modelDir: dir, batchSize: plan.batchSize, intraOpNumThreads: 1, weights: 'int8' });
      try {
        const batch: GenerationRequest[] = Array.from({ length: plan.prompts }, (_, i) => ({
          key: `b${i}`,
          prompt: [{ role: 'user', content: `Compute ${10 + ((i * 37 + 11) % 90)}+${10 + ((i * 53 + 29) % 90)}.` }],
          sampling: { ...GREEDY, maxNewTokens: plan.maxNewTokens },
        }));
        const speed = { fp32: [] as number[], int8: [] as number[] };
        let same = 0;
        await fp32.generate(batch.slice(0, 2));
        await int8.generate(batch.slice(0, 2));
        for (let rep = 0; rep < plan.reps; rep++) {
          const texts: Record<'fp32' | 'int8', string[]> = { fp32: [], int8: [] };
          for (const [name, backend] of [['fp32', fp32], ['int8', int8]] as const) {
            const started = performance.now();
            const results = await backend.generate(batch);
            const seconds = (performance.now() - started) / 1000;
            speed[name].push(results.reduce((s, r) => s + r.completionTokens, 0) / seconds);
            texts[name] = results.map((r) => r.text);
          }
          same = texts.int8.filter((t, i) => t === texts.fp32[i]).length;
          log(`${SECTION}: ${model.name} rep ${rep + 1}/${plan.reps}: fp32 ${fmt.int(speed.fp32.at(-1)!)} tok/s, int8 ${fmt.int(speed.int8.at(-1)!)} tok/s`);
        }
        const ratio = median(speed.int8) / median(speed.fp32);
        const size = (f: string) => statSync(join(dir, f)).size / 1e6;
        out.findings.push(
          info(SECTION, `${model.name} · generated tokens/s, int8 / fp32`, `${fmt.int(median(speed.int8))} tok/s`, `${fmt.int(median(speed.fp32))} tok/s`, ratio),
          info(SECTION, `${model.name} · graph size, int8 / fp32`, `${fmt.num(size('onnx/model_quantized.onnx'))} MB`, `${fmt.num(size('onnx/model.onnx'))} MB`, size('onnx/model_quantized.onnx') / size('onnx/model.onnx')),
          info(SECTION, `${model.name} · greedy answers identical to fp32's`, `${same}/${plan.prompts}`),
        );
      } finally {
        await fp32.close();
        await int8.close();
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  out.notes.push(
    `- ${models.map((m) => m.description).join('; ')}: ${plan.prompts} chat prompts, greedy, ≤ ${plan.maxNewTokens} new tokens, batch ${plan.batchSize}, one onnxruntime thread, median of ${plan.reps} (fp32 and int8 alternated). int8 = \`python -m aries_trainer quantize\` (onnxruntime quantize_dynamic, QInt8 weights, per tensor).`,
  );
  return out;
}
