/** Where one of my messages stands, as its mark shows it: a receipt only ever raises it. */

export type Mark = 'pending' | 'sent' | 'delivered' | 'read' | 'failed';

const RANK: Record<Mark, number> = { failed: -1, pending: 0, sent: 1, delivered: 2, read: 3 };

/** The mark after `next` was told: `next` when it ranks above `current` (a late `delivered`
 * never lowers `read`), else `current`. */
export function raised(current: Mark | undefined, next: Mark): Mark {
  return current !== undefined && RANK[next] <= RANK[current] ? current : next;
}
