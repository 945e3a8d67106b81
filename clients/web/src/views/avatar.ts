/** A person's (or a group's) picture: their avatar as an `<img>` (no Referer goes to the
 * avatar's host), or their initials in a circle of their colour when there is none or it does
 * not load. The name is the image's alt text; the initials are hidden from screen readers,
 * which read the name next to them. */

import { h } from '../dom';
import type { Face } from '../model/people';

/** Avatars that did not load: drawn as initials from then on, not asked for again. */
const broken = new Set<string>();

export function avatar(face: Face): HTMLElement {
  if (!face.avatarUrl || broken.has(face.avatarUrl)) return initialsOf(face);
  const url = face.avatarUrl;
  const img = h('img', {
    className: 'avatar', src: face.avatarUrl, alt: face.name,
    referrerpolicy: 'no-referrer', decoding: 'async', width: 32, height: 32,
  });
  img.addEventListener('error', () => {
    broken.add(url);
    img.replaceWith(initialsOf(face));
  }, { once: true });
  return img;
}

function initialsOf(face: Face): HTMLElement {
  const el = h('span', { className: 'avatar initials', 'aria-hidden': 'true' }, face.initials);
  el.style.backgroundColor = face.colour;
  return el;
}
