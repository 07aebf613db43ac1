/** The review panel's keyboard map, shown in the UI (press ?). */
export type KeyAction =
  | { kind: 'next' | 'previous' | 'accept' | 'swap' | 'tie' | 'discard' | 'undo' | 'edit' | 'diff' | 'search' | 'help' | 'agreement' | 'escape' | 'next-filter' | 'previous-filter' }
  | { kind: 'choose'; role: 'chosen' | 'rejected'; number: number };

export const SHORTCUTS: [string, string][] = [
  ['j / k', 'next / previous trajectory'],
  ['Enter', 'accept the automatic selection'],
  ['1 … 9', 'choose step n as chosen'],
  ['Shift+1 … 9', 'choose step n as rejected (with a chosen step: saves the pair)'],
  ['s', 'swap chosen and rejected'],
  ['t', 'tie (no pair)'],
  ['d', 'discard (no pair)'],
  ['u  or  Ctrl+Z', 'undo your last decision on this trajectory'],
  ['e', 'edit the chosen (or last) response; Ctrl+Enter saves it as a curated step'],
  ['v', 'word diff against the previous step on / off'],
  ['/', 'search'],
  ['f / Shift+F', 'next / previous filter (needs review, auto-selected, skipped, overridden, disagree, low margin, all)'],
  ['a', 'agreement: human vs strategies, Cohen\'s κ between curators'],
  ['?', 'this help'],
  ['Esc', 'clear a half-made choice'],
];

export function keyAction(e: KeyboardEvent): KeyAction | null {
  if (e.altKey) return null;
  const digit = /^Digit([1-9])$/.exec(e.code);
  if (digit && !e.ctrlKey && !e.metaKey) return { kind: 'choose', role: e.shiftKey ? 'rejected' : 'chosen', number: Number(digit[1]) };
  if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'z') return { kind: 'undo' };
  if (e.ctrlKey || e.metaKey) return null;
  switch (e.key) {
    case 'j':
    case 'ArrowDown':
      return { kind: 'next' };
    case 'k':
    case 'ArrowUp':
      return { kind: 'previous' };
    case 'Enter':
      return { kind: 'accept' };
    case 's':
      return { kind: 'swap' };
    case 't':
      return { kind: 'tie' };
    case 'd':
      return { kind: 'discard' };
    case 'u':
      return { kind: 'undo' };
    case 'e':
      return { kind: 'edit' };
    case 'v':
      return { kind: 'diff' };
    case '/':
      return { kind: 'search' };
    case 'f':
      return { kind: 'next-filter' };
    case 'F':
      return { kind: 'previous-filter' };
    case '?':
      return { kind: 'help' };
    case 'a':
      return { kind: 'agreement' };
    case 'Escape':
      return { kind: 'escape' };
    default:
      return null;
  }
}
