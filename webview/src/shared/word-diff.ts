import { diffWords } from 'diff';
import { showControls } from './visible';

/** Word-level diff of a step against the previous one, as text nodes in <ins>/<del> (never HTML). */
export interface DiffStats {
  added: number;
  removed: number;
}

export function wordDiff(previous: string, current: string): { fragment: DocumentFragment; stats: DiffStats } {
  const fragment = document.createDocumentFragment();
  const stats: DiffStats = { added: 0, removed: 0 };
  for (const part of diffWords(previous, current)) {
    const words = part.value.trim() ? part.value.trim().split(/\s+/).length : 0;
    const node = part.added ? document.createElement('ins') : part.removed ? document.createElement('del') : document.createElement('span');
    node.textContent = showControls(part.value);
    if (part.added) stats.added += words;
    if (part.removed) stats.removed += words;
    fragment.append(node);
  }
  return { fragment, stats };
}
