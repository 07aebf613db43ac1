/**
 * One sequence's generated text, built token by token: incremental detokenization (a window of
 * a few tokens decoded per step, never the whole text), stop strings (text cut before the first one) and the
 * streamable part (text that can no longer turn out to be the start of a stop string).
 */

export interface TokenDecoder {
  decode(ids: readonly number[]): string;
}

/**
 * Tokens decoded together, so decoders that drop a leading space (SentencePiece "▁") or join bytes
 * across tokens see the same context as a full decode: the window starts with up to CONTEXT tokens
 * before the unread ones (prompt tokens at first) and slides forward once it holds WINDOW tokens.
 * Each step then costs one decode of at most WINDOW tokens, whatever the length of the text.
 */
const CONTEXT = 4;
const WINDOW = 16;

export class Completion {
  /** Generated text so far, stop string excluded once found. */
  text = '';
  stopped = false;
  private readonly ids: number[];
  private readonly firstGenerated: number;
  /** ids[windowStart, readUpTo) decode to windowText; ids after readUpTo are not in `text` yet. */
  private windowStart = 0;
  private readUpTo: number;
  private windowText: string;
  private streamed = 0;
  private readonly longestStop: number;

  constructor(
    private readonly decoder: TokenDecoder,
    promptIds: readonly number[],
    private readonly stops: readonly string[],
  ) {
    this.ids = promptIds.slice(Math.max(0, promptIds.length - CONTEXT));
    this.firstGenerated = this.ids.length;
    this.readUpTo = this.ids.length;
    this.windowText = decoder.decode(this.ids);
    this.longestStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** Adds a generated token; returns true when a stop string has now appeared. */
  push(id: number): boolean {
    this.ids.push(id);
    const full = this.decoder.decode(this.ids.slice(this.windowStart));
    // A token that ends in the middle of a UTF-8 character decodes to U+FFFD: wait for the rest.
    if (full.length > this.windowText.length && !full.endsWith('\uFFFD')) this.read(full);
    return this.stopped;
  }

  /** At the end: whatever is still held back (a character cut off by max_new_tokens decodes as U+FFFD). */
  flush(): void {
    if (this.stopped || this.readUpTo === this.ids.length) return;
    const full = this.decoder.decode(this.ids.slice(this.windowStart));
    if (full.length > this.windowText.length) this.read(full);
  }

  /** `full` (the window up to the last id) extends windowText: the difference is new text. */
  private read(full: string): void {
    this.append(full.slice(this.windowText.length));
    this.readUpTo = this.ids.length;
    if (this.readUpTo - this.windowStart > WINDOW) {
      this.windowStart = this.readUpTo - CONTEXT;
      this.windowText = this.decoder.decode(this.ids.slice(this.windowStart, this.readUpTo));
    } else {
      this.windowText = full;
    }
  }

  get generatedTokens(): number {
    return this.ids.length - this.firstGenerated;
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
