/**
 * Bidirectional-override and isolate characters (U+202A–U+202E, U+2066–U+2069) reorder the text
 * around them: in a prompt or an answer they can make a curator read something other than what
 * the model wrote ("Trojan Source"). Everything the panels show passes through here, which
 * replaces each with a visible ⟨U+202E⟩; the stored text is not changed (the editor shows it raw).
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function showControls(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `⟨U+${c.charCodeAt(0).toString(16).toUpperCase()}⟩`);
}
