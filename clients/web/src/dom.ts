/** A tiny element builder: `h('button', { type: 'submit', 'aria-label': 'Send' }, 'Send')`. */
type Attrs = Record<string, string | number | boolean | null | undefined | ((event: any) => void)>;
type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value);
    else if (key === 'className') el.className = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

/** An error's words for a person (`detail` of a REST error, else its message). */
export function describe(error: unknown): string {
  if (error && typeof error === 'object') {
    const e = error as { detail?: unknown; message?: unknown };
    if (typeof e.detail === 'string' && e.detail) return e.detail;
    if (typeof e.message === 'string') return e.message;
  }
  return String(error);
}
