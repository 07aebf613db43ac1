import type { GenerateOptions, GenerationBackend, GenerationRequest, GenerationResult } from '../src/generation/backend';

/**
 * Passes every call through to a real backend and keeps the requests and results, so the
 * benchmark can compare texts and replay the same prompts on a peer.
 */
export class RecordingBackend implements GenerationBackend {
  readonly kind: string;
  readonly modelId: string;
  readonly mergesCalls: boolean | undefined;
  readonly calls: { requests: GenerationRequest[]; results: GenerationResult[] }[] = [];

  constructor(private readonly inner: GenerationBackend) {
    this.kind = inner.kind;
    this.modelId = inner.modelId;
    this.mergesCalls = inner.mergesCalls;
  }

  async generate(requests: GenerationRequest[], options?: GenerateOptions): Promise<GenerationResult[]> {
    const results = await this.inner.generate(requests, options);
    this.calls.push({ requests, results });
    return results;
  }

  /** The inner backend outlives this recording; its owner closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
