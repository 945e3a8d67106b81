/** A message's text cut into plain text and http(s) links, without the DOM: the view makes each
 * link an `<a>` and everything else a text node, so no other markup is ever interpreted. */

export type TextPart = { text: string } | { text: string; href: string };

/** A candidate: `http://` or `https://` not inside a word, up to whitespace or a character
 * that cannot end a URL in running text (quotes and angle brackets). */
const CANDIDATE = /(?<![\p{L}\p{N}_])https?:\/\/[^\s<>"'`]+/giu;
/** Punctuation that ends a sentence rather than the URL. */
const TRAILING = /[.,;:!?'"*_~]$/;

/** The parts of `text` in order; their texts joined are `text` again. */
export function linkParts(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let at = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const url = trimEnd(match[0]);
    const href = httpHref(url);
    if (!href) continue;
    const start = match.index!;
    if (start > at) parts.push({ text: text.slice(at, start) });
    parts.push({ text: url, href });
    at = start + url.length;
  }
  if (at < text.length) parts.push({ text: text.slice(at) });
  return parts;
}

/** Drops what reads as punctuation after the link: a full stop, a closing bracket with no
 * opening one in the link ("(see https://a.example/x)"). */
function trimEnd(url: string): string {
  for (;;) {
    if (TRAILING.test(url)) url = url.slice(0, -1);
    else if (url.endsWith(')') && count(url, '(') < count(url, ')')) url = url.slice(0, -1);
    else if (url.endsWith(']') && count(url, '[') < count(url, ']')) url = url.slice(0, -1);
    else return url;
  }
}

function count(text: string, char: string): number {
  return text.split(char).length - 1;
}

/** The link's address when it is an http(s) URL with a host, else `undefined` (stays text). */
function httpHref(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || !parsed.hostname) return undefined;
    return parsed.href;
  } catch {
    return undefined;
  }
}
