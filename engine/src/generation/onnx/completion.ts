/**
 * One sequence's generated text, built token by token: incremental detokenization (a few tokens
 * decoded per step, never the whole text), stop strings (text cut before the first one) and the
 * streamable part (text that can no longer turn out to be the start of a stop string).
 */

export interface TokenDecoder {
  decode(ids: readonly number[]): string;
}

/** Prompt tokens decoded with the first generated ones, so decoders that drop a leading space
 * (SentencePiece "▁") or join bytes across tokens see the same context as a full decode. */
const PROMPT_CONTEXT = 4;

export class Completion {
  /** Generated text so far, stop string excluded once found. */
  text = '';
  stopped = false;
  private readonly ids: number[];
  private prefixOffset = 0;
  private readonly readOffsetStart: number;
  private readOffset: number;
  private streamed = 0;
  private readonly longestStop: number;

  constructor(
    private readonly decoder: TokenDecoder,
    promptIds: readonly number[],
    private readonly stops: readonly string[],
  ) {
    this.ids = promptIds.slice(Math.max(0, promptIds.length - PROMPT_CONTEXT));
    this.readOffsetStart = this.ids.length;
    this.readOffset = this.ids.length;
    this.longestStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Adds a generated token; returns true when a stop string has now appeared. */
  push(id: number): boolean {
    this.ids.push(id);
    const prefix = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decoder.decode(this.ids.slice(this.prefixOffset));
    // A token that ends in the middle of a UTF-8 character decodes to U+FFFD: wait for the rest.
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      this.append(full.slice(prefix.length));
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
    }
    return this.stopped;
  }

  /** At the end: whatever is still held back (a character cut off by max_new_tokens decodes as U+FFFD). */
  flush(): void {
    if (this.stopped || this.readOffset === this.ids.length) return;
    const prefix = this.decoder.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.decoder.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length) this.append(full.slice(prefix.length));
    this.readOffset = this.ids.length;
  }

  get generatedTokens(): number {
    return this.ids.length - this.readOffsetStart;
  }

  /** Text not yet streamed that is safe to stream: at the end, everything; before, all but a possible stop-string start. */
  takeStreamable(final: boolean): string {
    const end = final || this.stopped ? this.text.length : this.text.length - this.heldBack();
    if (end <= this.streamed) return '';
    const piece = this.text.slice(this.streamed, end);
    this.streamed = end;
    return piece;
  }

  private append(piece: string): void {
    const before = this.text.length;
    this.text += piece;
    if (this.longestStop === 0) return;
    // Only the new text and the last (longest stop - 1) characters before it can hold a new match.
    const from = Math.max(0, before - this.longestStop + 1);
    let cut = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.text = this.text.slice(0, cut);
      this.stopped = true;
    }
  }

  /** Length of the longest suffix of the text that is a proper prefix of some stop string. */
  private heldBack(): number {
    let held = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, this.text.length); k > held; k--) {
        if (this.text.endsWith(stop.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
