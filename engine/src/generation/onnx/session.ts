import { InferenceSession } from 'onnxruntime-node';
import { badInput } from '../../errors';

/**
 * One onnxruntime session on the CPU, as the engine runs every local graph (the decoder and the
 * reward model). A graph that does not load names the file and what to check.
 */
export async function openCpuSession(modelPath: string, intraOpNumThreads?: number): Promise<InferenceSession> {
  try {
    return await InferenceSession.create(modelPath, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...(intraOpNumThreads ? { intraOpNumThreads } : {}),
      // Idle worker threads sleep instead of spinning: the engine shares the machine with the editor
      // and the trainer, and on a busy 2-core machine spinning made 2 threads 2x slower than 1.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (err) {
    throw badInput(`${modelPath}: onnxruntime cannot load the graph (${(err as Error).message})`, 'check the export finished (and any .onnx_data file sits next to it)');
  }
}
