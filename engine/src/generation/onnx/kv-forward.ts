import { InferenceSession, Tensor } from 'onnxruntime-node';
import { EngineError } from '../../errors';
import type { DecoderGraph } from './decoder-graph';

/**
 * Forward passes of one batch through the decoder graph, carrying the key/value cache between
 * them. Each row has its own attention mask over the cache's columns, which may have holes: left
 * padding, the gap between a cached prefix and the new tokens of a prompt, rows of different
 * lengths merged into one batch. Position ids are each row's count of real tokens before, so a row
 * sees the positions it would see alone (the graph must take position_ids for prefixes and merges;
 * see `supportsHoles`). With optimum's graph the present.* tensors of one run are the next run's
 * past. With a slot-cache graph (model_slots.onnx) the cache tensors are buffers with room for more
 * columns than are used (the unused ones masked); each run returns only the new tokens' columns,
 * which are written into the buffers in place, and the buffers grow when full.
 */

/** Free columns a slot cache gets when it grows: few, since attention runs over every column. */
const SLOT_HEADROOM = 32;

export type KvData = Float32Array | Uint16Array;

/** One sequence's keys and values, row-compact: for each cache tensor [heads, tokens.length, headDim]. */
export interface RowCache {
  tokens: readonly number[];
  tensors: KvData[];
  bytes: number;
}

/** A prompt to prefill: its ids after `prefix` (the first `length` tokens of a cached sequence), if any. */
export interface PrefillRow {
  ids: readonly number[];
  prefix?: { cache: RowCache; length: number };
}

export class KvForward {
  /** Time spent inside session.run, summed. */
  runMs = 0;
  private past: Tensor[] = [];
  /** Columns of the cache (the past's third dimension). */
  private pastLength = 0;
  /** Per row: 1 where the column holds one of its tokens; the first pastLength entries are valid. */
  private masks: BigInt64Array[] = [];
  /** Per row: the position of its next token (its real tokens so far). */
  private positions: number[] = [];
  private logitsData: Float32Array = new Float32Array(0);
  /** Backs each run's attention mask. */
  private maskBuffer: BigInt64Array = new BigInt64Array(0);
  private logitsPositions = 1;
  /** After stepMany: per row, the chunk position whose logits logits(row) gives (else the last). */
  private logitsAtPosition: Int32Array | undefined;
  /** After stepMany: per row, where its tokens start in the chunk and how many it fed. */
  private chunk: { start: Int32Array; fed: Int32Array; width: number } | undefined;
  /** Width of the logits (config.json's vocab_size, which may exceed the tokenizer's). */
  vocabSize = 0;

  /** Slot cache: free columns added when the buffers grow (tests use 1, to grow on every step). */
  private readonly slotHeadroom: number;

  constructor(
    private readonly session: InferenceSession,
    private readonly graph: DecoderGraph,
    options: { slotHeadroom?: number } = {},
  ) {
    this.slotHeadroom = options.slotHeadroom ?? SLOT_HEADROOM;
  }

  get rows(): number {
    return this.masks.length;
  }

  /** Prefixes and merges need explicit positions: without position_ids the graph counts columns. */
  get supportsHoles(): boolean {
    return this.graph.hasPositionIds;
  }

  /** Runs the prompts (each at least one token) together; logits of each row's last token follow. */
  async prefill(prompts: readonly (readonly number[])[], padId: number): Promise<void> {
    await this.prefillRows(prompts.map((ids) => ({ ids })), padId);
  }

  /**
   * Starts a batch: each row's cached prefix (keys and values copied in, left-aligned to the
   * longest prefix) and then its new ids (left-padded to the longest), in one run.
   */
  async prefillRows(rows: readonly PrefillRow[], padId: number): Promise<void> {
    const n = rows.length;
    const prefixWidth = rows.reduce((m, r) => Math.max(m, r.prefix?.length ?? 0), 0);
    const width = rows.reduce((m, r) => Math.max(m, r.ids.length), 0);
    const total = prefixWidth + width;
    const ids = new BigInt64Array(n * width).fill(BigInt(padId));
    // HF fills padded positions with 1; their outputs are masked anyway.
    const positions = new BigInt64Array(n * width).fill(1n);
    this.masks = [];
    this.positions = [];
    for (let r = 0; r < n; r++) {
      const row = rows[r]!;
      const p = row.prefix?.length ?? 0;
      const mask = new BigInt64Array(total + 64);
      mask.fill(1n, prefixWidth - p, prefixWidth);
      const pad = width - row.ids.length;
      for (let j = 0; j < row.ids.length; j++) {
        ids[r * width + pad + j] = BigInt(row.ids[j]!);
        positions[r * width + pad + j] = BigInt(p + j);
      }
      mask.fill(1n, prefixWidth + pad, total);
      this.masks.push(mask);
      this.positions.push(p + row.ids.length);
    }
    this.past = this.graph.pastInputs.map((_, t) => this.prefixTensor(rows, t, prefixWidth));
    this.pastLength = prefixWidth;
    await this.run(ids, this.flatMask(total), positions, width);
  }

  /** Feeds one token per row (rows in their current order). */
  async step(tokens: ArrayLike<number>): Promise<void> {
    const rows = this.rows;
    const ids = new BigInt64Array(rows);
    const positions = new BigInt64Array(rows);
    const s = this.pastLength;
    for (let r = 0; r < rows; r++) {
      ids[r] = BigInt(tokens[r]!);
      positions[r] = BigInt(this.positions[r]!++);
      let mask = this.masks[r]!;
      if (mask.length <= s) {
        const grown = new BigInt64Array(2 * s + 64);
        grown.set(mask);
        this.masks[r] = mask = grown;
      }
      mask[s] = 1n;
    }
    await this.run(ids, this.flatMask(s + 1), positions, 1);
  }

  /**
   * Feeds each row its own run of tokens (at least one: the token just picked, then draft tokens
   * to check), left-padded to the longest; logits come back for every position. Then
   * `logitsAt` reads them and `accept` keeps the checked part of each row.
   */
  async stepMany(tokens: readonly (readonly number[])[]): Promise<void> {
    const rows = this.rows;
    const width = tokens.reduce((m, t) => Math.max(m, t.length), 1);
    const s = this.pastLength;
    const ids = new BigInt64Array(rows * width);
    const positions = new BigInt64Array(rows * width).fill(1n);
    const start = new Int32Array(rows);
    const fed = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const row = tokens[r]!;
      const pad = width - row.length;
      start[r] = pad;
      fed[r] = row.length;
      let mask = this.masks[r]!;
      if (mask.length < s + width) {
        const grown = new BigInt64Array(2 * (s + width) + 64);
        grown.set(mask);
        this.masks[r] = mask = grown;
      }
      mask.fill(0n, s, s + pad);
      mask.fill(1n, s + pad, s + width);
      for (let j = 0; j < row.length; j++) {
        ids[r * width + pad + j] = BigInt(row[j]!);
        positions[r * width + pad + j] = BigInt(this.positions[r]! + j);
      }
      this.positions[r]! += row.length;
    }
    await this.run(ids, this.flatMask(s + width), positions, width, width);
    this.chunk = { start, fed, width };
  }

  /** After stepMany: the logits that follow the row's `index`-th fed token (0 = the first). */
  logitsAt(row: number, index: number): Float32Array {
    const c = this.chunk!;
    const v = this.vocabSize;
    const at = (row * this.logitsPositions + c.start[row]! + index) * v;
    return this.logitsData.subarray(at, at + v);
  }

  /** After stepMany: keeps the row's first `kept` fed tokens; the rest leave its cache, and logits(row) follows the last kept one. */
  accept(row: number, kept: number): void {
    const c = this.chunk!;
    const fed = c.fed[row]!;
    if (kept < 1 || kept > fed) throw new Error(`accept: row ${row} fed ${fed} tokens, cannot keep ${kept}`);
    const firstColumn = this.pastLength - c.width + c.start[row]!;
    this.masks[row]!.fill(0n, firstColumn + kept, firstColumn + fed);
    this.positions[row]! -= fed - kept;
    this.logitsAtPosition ??= new Int32Array(this.rows).fill(-1);
    this.logitsAtPosition[row] = c.start[row]! + kept - 1;
  }

  /** The logits after `row`'s last token (a view, valid until the next run). */
  logits(row: number): Float32Array {
    const v = this.vocabSize;
    const position = this.logitsAtPosition?.[row] ?? -1;
    const start = (row * this.logitsPositions + (position >= 0 ? position : this.logitsPositions - 1)) * v;
    return this.logitsData.subarray(start, start + v);
  }

  /**
   * Drops rows from the batch: `keep` lists the rows to keep, in their new order. Leading columns
   * that no kept row uses go too, so a long row that left stops costing attention.
   */
  keepRows(keep: readonly number[]): void {
    const trim = keep.length === 0 ? this.pastLength : Math.min(...keep.map((r) => leadingZeros(this.masks[r]!, this.pastLength)));
    if (keep.length === this.rows && trim === 0) return;
    this.past = this.past.map((t) => takeRows(t, keep, trim));
    this.masks = keep.map((r) => this.masks[r]!.slice(trim));
    this.positions = keep.map((r) => this.positions[r]!);
    this.pastLength -= trim;
    const v = this.vocabSize;
    const logits = new Float32Array(keep.length * v);
    keep.forEach((r, i) => logits.set(this.logits(r), i * v));
    this.logitsData = logits;
    this.logitsPositions = 1;
    this.logitsAtPosition = undefined;
    this.chunk = undefined;
  }

  /**
   * Appends the rows of `other` (a batch just prefilled on the same graph) after this batch's rows;
   * `other` is spent. Every row's tokens are packed to the right end of the new cache: holes (the
   * gap after a cached prefix, padding) go, so attention runs over the longest row and no more.
   */
  absorb(other: KvForward): void {
    this.runMs += other.runMs;
    other.runMs = 0;
    if (this.rows === 0 && !other.hasHoles()) {
      this.past = other.past;
      this.pastLength = other.pastLength;
      this.masks = other.masks;
      this.positions = other.positions;
      this.logitsData = other.logitsData;
      this.logitsPositions = other.logitsPositions;
      this.vocabSize = other.vocabSize;
      return;
    }
    const sources = [
      ...this.masks.map((_, r) => ({ from: this as KvForward, row: r })),
      ...other.masks.map((_, r) => ({ from: other, row: r })),
    ].map((x) => ({ ...x, runs: x.from.tokenRuns(x.row) }));
    const counts = sources.map((x) => x.runs.reduce((n, [, len]) => n + len, 0));
    const width = Math.max(0, ...counts);
    const { kvHeads: h, headDim: d } = this.graph;
    const template = other.past[0]!;
    this.past = other.past.map((_, t) => {
      const dst = allocLike(template, sources.length * h * width * d);
      sources.forEach((x, i) => {
        const src = x.from.past[t]!;
        const s = src.dims[2]!;
        const data = src.data as KvData;
        for (let head = 0; head < h; head++) {
          const base = (x.row * h + head) * s * d;
          copyRuns(data, base, x.runs, d, dst, ((i * h + head) * width + width - counts[i]!) * d);
        }
      });
      return newLike(template, dst, [sources.length, h, width, d]);
    });
    const v = other.vocabSize;
    const logits = new Float32Array(sources.length * v);
    sources.forEach((x, i) => logits.set(x.from.logits(x.row), i * v));
    this.masks = counts.map((n) => {
      const m = new BigInt64Array(width + 64);
      m.fill(1n, width - n, width);
      return m;
    });
    this.positions = sources.map((x) => x.from.positions[x.row]!);
    this.logitsData = logits;
    this.logitsPositions = 1;
    this.logitsAtPosition = undefined;
    this.chunk = undefined;
    this.vocabSize = v;
    this.pastLength = width;
  }

  /** Whether some row's tokens are not one block at the right end of the cache. */
  private hasHoles(): boolean {
    return this.masks.some((_, r) => {
      const runs = this.tokenRuns(r);
      return runs.length > 1 || (runs.length === 1 && runs[0]![0] + runs[0]![1] !== this.pastLength);
    });
  }

  /** The columns holding `row`'s tokens, as [first column, length] runs in order. */
  private tokenRuns(row: number): [number, number][] {
    const mask = this.masks[row]!;
    const runs: [number, number][] = [];
    for (let c = 0; c < this.pastLength; c++) {
      if (mask[c] !== 1n) continue;
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === c) last[1]++;
      else runs.push([c, 1]);
    }
    return runs;
  }

  /** A compact copy of `row`'s keys and values; `tokens` are the ids it was fed, in order (one per real column). */
  rowCache(row: number, tokens: readonly number[]): RowCache {
    // Its columns come in a few runs (prefix, prompt, steps): copied run by run.
    const runs = this.tokenRuns(row);
    const count = runs.reduce((n, [, len]) => n + len, 0);
    if (count !== tokens.length) throw new Error(`row ${row} holds ${count} tokens, not the ${tokens.length} it was fed`);
    const tensors = this.past.map((t) => {
      const [, h, s, d] = t.dims as [number, number, number, number];
      const src = t.data as KvData;
      const dst = allocLike(t, h * count * d);
      for (let head = 0; head < h; head++) {
        const from = (row * h + head) * s * d;
        copyRuns(src, from, runs, d, dst, head * count * d);
      }
      return dst;
    });
    return { tokens, tensors, bytes: tensors.reduce((n, t) => n + t.byteLength, 0) };
  }

  private prefixTensor(rows: readonly PrefillRow[], index: number, width: number): Tensor {
    const { kvHeads: h, headDim: d } = this.graph;
    const dims = [rows.length, h, width, d];
    const half = this.graph.pastDtype === 'float16';
    const data = half ? new Uint16Array(rows.length * h * width * d) : new Float32Array(rows.length * h * width * d);
    if (width > 0) {
      rows.forEach((row, r) => {
        if (!row.prefix) return;
        const { cache, length } = row.prefix;
        const src = cache.tensors[index]!;
        const cached = cache.tokens.length;
        for (let head = 0; head < h; head++) {
          data.set(src.subarray(head * cached * d, (head * cached + length) * d), ((r * h + head) * width + width - length) * d);
        }
      });
    }
    return half ? new Tensor('float16', data as Uint16Array, dims) : new Tensor('float32', data as Float32Array, dims);
  }

  /** The rows' masks as one [rows, total] array (a view of a buffer reused from run to run). */
  private flatMask(total: number): BigInt64Array {
    const size = this.rows * total;
    if (this.maskBuffer.length < size) this.maskBuffer = new BigInt64Array(size + this.rows * 64);
    const flat = this.maskBuffer.subarray(0, size);
    this.masks.forEach((m, r) => flat.set(m.subarray(0, total), r * total));
    return flat;
  }

  /** Slot cache: room for `need` columns, the used ones copied over when it grows. */
  private ensureCapacity(need: number): void {
    const have = this.past[0]!.dims[2]!;
    if (have >= need) return;
    const { kvHeads: h, headDim: d } = this.graph;
    const capacity = need + this.slotHeadroom;
    const used = this.pastLength * d;
    this.past = this.past.map((old) => {
      const lanes = old.dims[0]! * h;
      const src = old.data as KvData;
      const dst = allocLike(old, lanes * capacity * d);
      for (let lane = 0; lane < lanes; lane++) dst.set(src.subarray(lane * have * d, lane * have * d + used), lane * capacity * d);
      return newLike(old, dst, [old.dims[0]!, h, capacity, d]);
    });
  }

  /** Slot cache: a run's mask [rows, pastLength + width] laid out over the buffers' columns, then the new tokens. */
  private slotMask(mask: BigInt64Array, width: number, columns: number): BigInt64Array {
    const rows = this.rows;
    const from = this.pastLength + width;
    const to = columns + width;
    const out = new BigInt64Array(rows * to);
    for (let r = 0; r < rows; r++) {
      out.set(mask.subarray(r * from, r * from + this.pastLength), r * to);
      out.set(mask.subarray(r * from + this.pastLength, (r + 1) * from), r * to + columns);
    }
    return out;
  }

  /** Slot cache: the run's new_key.* / new_value.* columns into the buffers, from column pastLength on. */
  private writeColumns(out: InferenceSession.ReturnType, width: number): void {
    const { kvHeads: h, headDim: d } = this.graph;
    const lanes = this.rows * h;
    const capacity = this.past[0]!.dims[2]!;
    this.graph.presentOutputs.forEach((name, t) => {
      const fresh = out[name] as Tensor;
      if (fresh.type !== this.past[t]!.type) throw new EngineError('BACKEND', `${this.graph.modelPath}: "${name}" came back as ${fresh.type}, the cache is ${this.past[t]!.type}`);
      const src = fresh.data as KvData;
      const dst = this.past[t]!.data as KvData;
      const block = width * d;
      for (let lane = 0; lane < lanes; lane++) dst.set(src.subarray(lane * block, (lane + 1) * block), (lane * capacity + this.pastLength) * d);
    });
  }

  /** One session.run; `keep` positions of logits per row come back (the last ones). */
  private async run(ids: BigInt64Array, mask: BigInt64Array, positions: BigInt64Array, width: number, keep = 1): Promise<void> {
    this.logitsAtPosition = undefined;
    this.chunk = undefined;
    const rows = this.rows;
    const slots = this.graph.cacheLayout === 'slots';
    if (slots) this.ensureCapacity(this.pastLength + width);
    const columns = slots ? this.past[0]!.dims[2]! : this.pastLength;
    const feeds: Record<string, Tensor> = {
      input_ids: new Tensor('int64', ids, [rows, width]),
      attention_mask: new Tensor('int64', slots ? this.slotMask(mask, width, columns) : mask, [rows, columns + width]),
    };
    if (this.graph.hasPositionIds) feeds.position_ids = new Tensor('int64', positions, [rows, width]);
    if (this.graph.hasUseCacheBranch) feeds.use_cache_branch = new Tensor('bool', Uint8Array.of(this.pastLength > 0 ? 1 : 0), [1]);
    if (this.graph.logitsToKeepInput) feeds[this.graph.logitsToKeepInput] = new Tensor('int64', BigInt64Array.of(BigInt(keep)), []);
    this.graph.pastInputs.forEach((name, i) => (feeds[name] = this.past[i]!));

    const started = performance.now();
    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds);
    } catch (err) {
      throw new EngineError('BACKEND', `${this.graph.modelPath}: onnxruntime failed on a batch of ${rows} x ${width} tokens (past ${this.pastLength}): ${(err as Error).message}`);
    }
    this.runMs += performance.now() - started;

    if (slots) {
      this.writeColumns(out, width);
      this.pastLength += width;
    } else {
      this.past = this.graph.presentOutputs.map((name) => out[name] as Tensor);
      this.pastLength = this.past[0]!.dims[2]!;
    }
    const logits = out.logits as Tensor;
    if (logits.dims.length !== 3 || logits.dims[0] !== rows) {
      throw new EngineError('BACKEND', `${this.graph.modelPath}: logits came back as [${logits.dims.join(', ')}], expected [${rows}, ${width}, vocab]`);
    }
    this.vocabSize = logits.dims[2]!;
    this.logitsPositions = logits.dims[1]!;
    if (logits.type === 'float16') {
      this.logitsData = lastPositionsAsFloat(logits.data as Uint16Array, rows, this.logitsPositions, this.vocabSize, keep);
      this.logitsPositions = keep;
    } else {
      this.logitsData = logits.data as Float32Array;
    }
  }
}

/** One head's tokens, run by run, from `src` (columns of `d` values from `base`) into `dst` at `to`, one after the other. */
function copyRuns(src: KvData, base: number, runs: readonly [number, number][], d: number, dst: KvData, to: number): void {
  for (const [c, len] of runs) {
    dst.set(src.subarray(base + c * d, base + (c + len) * d), to);
    to += len * d;
  }
}

function leadingZeros(mask: BigInt64Array, length: number): number {
  let c = 0;
  while (c < length && mask[c] === 0n) c++;
  return c;
}

function newLike(t: Tensor, data: KvData, dims: number[]): Tensor {
  return t.type === 'float16' ? new Tensor('float16', data as Uint16Array, dims) : new Tensor('float32', data as Float32Array, dims);
}

function allocLike(t: Tensor, size: number): KvData {
  return t.type === 'float16' ? new Uint16Array(size) : new Float32Array(size);
}

/** [B, H, S, D] → [keep.length, H, S - trim, D], dropping the first `trim` columns. */
function takeRows(t: Tensor, keep: readonly number[], trim: number): Tensor {
  const [, h, s, d] = t.dims as [number, number, number, number];
  const src = t.data as KvData;
  const width = s - trim;
  const dst = allocLike(t, keep.length * h * width * d);
  if (trim === 0) {
    const block = h * s * d;
    keep.forEach((r, i) => dst.set(src.subarray(r * block, (r + 1) * block), i * block));
  } else {
    keep.forEach((r, i) => {
      for (let head = 0; head < h; head++) {
        const from = ((r * h + head) * s + trim) * d;
        dst.set(src.subarray(from, from + width * d), (i * h + head) * width * d);
      }
    });
  }
  return newLike(t, dst, [keep.length, h, width, d]);
}

let halfTable: Float32Array | undefined;

/** float16 logits [B, T, V] → float32 [B, keep, V] of the last `keep` positions. */
function lastPositionsAsFloat(src: Uint16Array, rows: number, positions: number, v: number, keep: number): Float32Array {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exp = (h >> 10) & 0x1f;
      const frac = h & 0x3ff;
      halfTable[h] = exp === 0 ? sign * 2 ** -14 * (frac / 1024) : exp === 31 ? (frac ? NaN : sign * Infinity) : sign * 2 ** (exp - 15) * (1 + frac / 1024);
    }
  }
  const out = new Float32Array(rows * keep * v);
  for (let r = 0; r < rows; r++) {
    const from = (r * positions + positions - keep) * v;
    const to = r * keep * v;
    for (let i = 0; i < keep * v; i++) out[to + i] = halfTable[src[from + i]!]!;
  }
  return out;
}
