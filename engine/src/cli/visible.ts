/**
 * What the CLI prints for people (not --json) shows bidirectional-override and isolate characters
 * (U+202A–U+202E, U+2066–U+2069) as ⟨U+202E⟩: raw, a terminal reorders the text around them, so an
 * id or an answer could read as something else ("Trojan Source"). The review panel does the same
 * (webview/src/shared/visible.ts); stored text and --json output are unchanged.
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function visibleControls(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase()}⟩`);
}
