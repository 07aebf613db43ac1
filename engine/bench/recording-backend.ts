import type { GenerateOptions, GenerationBackend, GenerationRequest, GenerationResult } from '../src/generation/backend';

/**
 * Passes every call through to a real backend, keeps the requests and results, and runs
 * `alongside` (the peer) on the very same requests right before or right after each call, taking
 * turns, so both sides see the same prompts and the same moments of a shared machine's load.
 * Time spent in `alongside` is kept apart, to be taken off the caller's wall time.
 */
export class RecordingBackend implements GenerationBackend {
  readonly kind: string;
  readonly modelId: string;
  readonly mergesCalls: boolean | undefined;
  readonly calls: { requests: GenerationRequest[]; results: GenerationResult[] }[] = [];
  alongsideMs = 0;

  constructor(
    private readonly inner: GenerationBackend,
    private readonly alongside?: (requests: GenerationRequest[]) => Promise<void>,
  ) {
    this.kind = inner.kind;
    this.modelId = inner.modelId;
    this.mergesCalls = inner.mergesCalls;
  }

  async generate(requests: GenerationRequest[], options?: GenerateOptions): Promise<GenerationResult[]> {
    const peerFirst = this.calls.length % 2 === 1;
    if (peerFirst) await this.runAlongside(requests);
    const results = await this.inner.generate(requests, options);
    this.calls.push({ requests, results });
    if (!peerFirst) await this.runAlongside(requests);
    return results;
  }

  /** The inner backend outlives this recording; its owner closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private async runAlongside(requests: GenerationRequest[]): Promise<void> {
    if (!this.alongside) return;
    const started = performance.now();
    await this.alongside(requests);
    this.alongsideMs += performance.now() - started;
  }
}
