/**
 * Server-sent events, as OpenAI-compatible servers stream them: `data: {...}` lines, a blank line
 * after each event, `data: [DONE]` at the end. Only `data` fields matter here; `event:`, `id:`,
 * `retry:` and `:` comment lines (keep-alives) are skipped. Text arrives in arbitrary pieces, so
 * the decoder keeps the unfinished line between pushes.
 */
export class SseDecoder {
  private pending = '';
  private data: string[] = [];

  /** Feeds decoded text; returns the data of every event it completed. */
  push(text: string): string[] {
    this.pending += text;
    const events: string[] = [];
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.pending);
      if (!match) break;
      // A lone '\r' at the very end may be the first half of '\r\n': wait for the next piece.
      if (match[0] === '\r' && match.index === this.pending.length - 1) break;
      const line = this.pending.slice(0, match.index);
      this.pending = this.pending.slice(match.index + match[0].length);
      this.line(line, events);
    }
    return events;
  }

  /** The stream ended: an event without its closing blank line still counts. */
  end(): string[] {
    const events: string[] = [];
    if (this.pending !== '') this.line(this.pending, events);
    this.pending = '';
    if (this.data.length > 0) events.push(this.data.join('\n'));
    this.data = [];
    return events;
  }

  private line(line: string, events: string[]): void {
    if (line === '') {
      if (this.data.length > 0) events.push(this.data.join('\n'));
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.data.push(value);
  }
}
