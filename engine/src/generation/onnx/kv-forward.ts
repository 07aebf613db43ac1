import { InferenceSession, Tensor } from 'onnxruntime-node';
import { EngineError } from '../../errors';
import type { DecoderGraph } from './decoder-graph';

/**
 * Forward passes of one batch through the decoder graph, carrying the key/value cache between them:
 * a prefill over the left-padded prompts, then one token per row per step. Position ids come from
 * the attention mask (HF's cumsum(mask) - 1), so a left-padded row sees the same positions as it
 * would alone. The present.* tensors of one step are fed back unchanged as the next step's past.
 */
export class KvForward {
  /** Time spent inside session.run, summed. */
  runMs = 0;
  private past: Tensor[] = [];
  private pastLength = 0;
  /** Left padding of each row, in tokens. */
  private padding: Int32Array = new Int32Array(0);
  private logitsData: Float32Array = new Float32Array(0);
  private logitsPositions = 1;
  private stepIds: BigInt64Array = new BigInt64Array(0);
  private stepPositions: BigInt64Array = new BigInt64Array(0);
  /** Backs each step's attention mask (a view of its first rows × (past + 1) entries). */
  private maskBuffer: BigInt64Array = new BigInt64Array(0);
  /** Width of the logits (config.json's vocab_size, which may exceed the tokenizer's). */
  vocabSize = 0;

  constructor(
    private readonly session: InferenceSession,
    private readonly graph: DecoderGraph,
  ) {}

  get rows(): number {
    return this.padding.length;
  }

  /** Runs the prompts (each at least one token) together; logits of each row's last token follow. */
  async prefill(prompts: readonly (readonly number[])[], padId: number): Promise<void> {
    const rows = prompts.length;
    const width = prompts.reduce((m, p) => Math.max(m, p.length), 0);
    const ids = new BigInt64Array(rows * width).fill(BigInt(padId));
    const mask = new BigInt64Array(rows * width);
    // HF fills padded positions with 1; their outputs are masked anyway.
    const positions = new BigInt64Array(rows * width).fill(1n);
    this.padding = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const prompt = prompts[r]!;
      const pad = width - prompt.length;
      this.padding[r] = pad;
      for (let j = 0; j < prompt.length; j++) {
        const at = r * width + pad + j;
        ids[at] = BigInt(prompt[j]!);
        mask[at] = 1n;
        positions[at] = BigInt(j);
      }
    }
    this.past = this.graph.pastInputs.map(() => emptyCache(this.graph, rows));
    this.pastLength = 0;
    await this.run(ids, mask, positions, width);
  }

  /** Feeds one token per row (rows in their current order). */
  async step(tokens: ArrayLike<number>): Promise<void> {
    const rows = this.rows;
    if (this.stepIds.length !== rows) {
      this.stepIds = new BigInt64Array(rows);
      this.stepPositions = new BigInt64Array(rows);
    }
    const total = this.pastLength + 1;
    if (this.maskBuffer.length < rows * total) this.maskBuffer = new BigInt64Array(rows * (total + 64));
    const mask = this.maskBuffer.subarray(0, rows * total).fill(1n);
    for (let r = 0; r < rows; r++) {
      this.stepIds[r] = BigInt(tokens[r]!);
      const pad = this.padding[r]!;
      if (pad > 0) mask.fill(0n, r * total, r * total + pad);
      this.stepPositions[r] = BigInt(this.pastLength - pad);
    }
    await this.run(this.stepIds, mask, this.stepPositions, 1);
  }

  /** The last position's logits of `row` after the latest run (a view, valid until the next run). */
  logits(row: number): Float32Array {
    const v = this.vocabSize;
    const start = (row * this.logitsPositions + this.logitsPositions - 1) * v;
    return this.logitsData.subarray(start, start + v);
  }

  /** Drops finished rows from the batch: `keep` lists the rows to keep, in their new order. */
  keepRows(keep: readonly number[]): void {
    if (keep.length === this.rows) return;
    this.past = this.past.map((t) => takeRows(t, keep));
    this.padding = Int32Array.from(keep, (r) => this.padding[r]!);
    const v = this.vocabSize;
    const logits = new Float32Array(keep.length * v);
    keep.forEach((r, i) => logits.set(this.logits(r), i * v));
    this.logitsData = logits;
    this.logitsPositions = 1;
  }

  private async run(ids: BigInt64Array, mask: BigInt64Array, positions: BigInt64Array, width: number): Promise<void> {
    const rows = this.rows;
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', ids, [rows, width]),
      attention_mask: new Tensor('int64', mask, [rows, this.pastLength + width]),
    };
    if (this.graph.hasPositionIds) feeds.position_ids = new Tensor('int64', positions, [rows, width]);
    if (this.graph.hasUseCacheBranch) feeds.use_cache_branch = new Tensor('bool', Uint8Array.of(this.pastLength > 0 ? 1 : 0), [1]);
    if (this.graph.logitsToKeepInput) feeds[this.graph.logitsToKeepInput] = new Tensor('int64', BigInt64Array.of(1n), []);
    this.graph.pastInputs.forEach((name, i) => (feeds[name] = this.past[i]!));

    const started = performance.now();
    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (err) {
      throw new EngineError('BACKEND', `${this.graph.modelPath}: onnxruntime failed on a batch of ${rows} x ${width} tokens (past ${this.pastLength}): ${(err as Error).message}`);
    }
    this.runMs += performance.now() - started;

    this.past = this.graph.presentOutputs.map((name) => out[name] as Tensor);
    this.pastLength = this.past[0]!.dims[2]!;
    const logits = out.logits as Tensor;
    if (logits.dims.length !== 3 || logits.dims[0] !== rows) {
      throw new EngineError('BACKEND', `${this.graph.modelPath}: logits came back as [${logits.dims.join(', ')}], expected [${rows}, ${width}, vocab]`);
    }
    this.vocabSize = logits.dims[2]!;
    this.logitsPositions = logits.dims[1]!;
    if (logits.type === 'float16') {
      this.logitsData = lastPositionsAsFloat(logits.data as Uint16Array, rows, this.logitsPositions, this.vocabSize);
      this.logitsPositions = 1;
    } else {
      this.logitsData = logits.data as Float32Array;
    }
  }
}

function emptyCache(graph: DecoderGraph, rows: number): Tensor {
  const dims = [rows, graph.kvHeads, 0, graph.headDim];
  return graph.pastDtype === 'float16' ? new Tensor('float16', new Uint16Array(0), dims) : new Tensor('float32', new Float32Array(0), dims);
}

/** [B, H, S, D] → [keep.length, H, S, D]; each row is one contiguous block. */
function takeRows(t: Tensor, keep: readonly number[]): Tensor {
  const [, h, s, d] = t.dims as [number, number, number, number];
  const block = h * s * d;
  if (t.type === 'float16') {
    const src = t.data as Uint16Array;
    const dst = new Uint16Array(keep.length * block);
    keep.forEach((r, i) => dst.set(src.subarray(r * block, (r + 1) * block), i * block));
    return new Tensor('float16', dst, [keep.length, h, s, d]);
  }
  const src = t.data as Float32Array;
  const dst = new Float32Array(keep.length * block);
  keep.forEach((r, i) => dst.set(src.subarray(r * block, (r + 1) * block), i * block));
  return new Tensor('float32', dst, [keep.length, h, s, d]);
}

let halfTable: Float32Array | undefined;

/** float16 logits [B, T, V] → float32 [B, 1, V] of the last position only. */
function lastPositionsAsFloat(src: Uint16Array, rows: number, positions: number, v: number): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      halfTable[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
    }
  }
  const out = new Float32Array(rows * v);
  for (let r = 0; r < rows; r++) {
    const from = (r * positions + positions - 1) * v;
    for (let i = 0; i < v; i++) out[r * v + i] = halfTable[src[from + i]!]!;
  }
  return out;
}
