import DOMPurify from 'dompurify';
import { Marked } from 'marked';
import { showControls } from './visible';

/**
 * Model and user text rendered as markdown, safely: marked turns it into HTML (raw HTML in the text
 * stays visible as text), DOMPurify keeps
 * only harmless elements and attributes (no script, style, iframes, forms, event handlers, or
 * links other than http(s)/mailto), and the result is a DOM fragment — never innerHTML of raw text.
 */
const escapeHtml = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

// Raw HTML in model output is shown as text, so curators see exactly what the model wrote
// (an <img> tag is evidence, not something to hide); DOMPurify then cleans what markdown made.
// An image is shown as its markdown, inert (a webview loads nothing, and its alt text may be the
// point): `![alt](url)` in a span, never an <img>.
const marked = new Marked({
  gfm: true,
  breaks: true,
  async: false,
  renderer: {
    html: ({ text }) => escapeHtml(text),
    image: ({ href, title, text }) => `<span class="md-image">${escapeHtml(`![${text}](${href}${title ? ` "${title}"` : ''})`)}</span>`,
  },
});

const ALLOWED_TAGS = ['p', 'br', 'strong', 'em', 'del', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'a', 'span'];
const ALLOWED_ATTR = ['href', 'title', 'class'];

let hooked = false;
function purifier(): typeof DOMPurify {
  if (!hooked) {
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        const href = node.getAttribute('href') ?? '';
        if (!/^(https?:|mailto:)/i.test(href)) node.removeAttribute('href');
        node.setAttribute('rel', 'noopener noreferrer');
      }
    });
    hooked = true;
  }
  return DOMPurify;
}

export function renderMarkdown(text: string): DocumentFragment {
  const html = marked.parse(showControls(text)) as string;
  return purifier().sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR, RETURN_DOM_FRAGMENT: true, ALLOW_DATA_ATTR: false });
}
