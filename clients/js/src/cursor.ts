/** Where a client stands in the server's change journal: the newest `cursor` handled and the
 * `epoch` it belongs to, plus the cursors handled lately, so a frame the catch-up sends again
 * (the server's `SYNC_OVERLAP`) is dropped instead of shown twice. */

export interface ResumePoint {
  cursor: number;
  epoch?: string;
}

export class CursorTracker {
  private newest: number | undefined;
  private epochName: string | undefined;
  private readonly handled = new Set<number>();

  constructor(
    start?: ResumePoint,
    private readonly remember = 10_000,
  ) {
    if (start) {
      this.newest = start.cursor;
      this.epochName = start.epoch;
    }
  }

  /** What to resume from (`?since=&epoch=`), or `undefined` before the first `unread`. */
  get resumePoint(): ResumePoint | undefined {
    return this.newest === undefined ? undefined : { cursor: this.newest, epoch: this.epochName };
  }

  /** Records a stored change's cursor; `false` when it was handled already (drop the frame). */
  handle(cursor: number): boolean {
    if (this.handled.has(cursor)) return false;
    this.handled.add(cursor);
    if (this.handled.size > this.remember) {
      // Sets iterate in insertion order: forget the oldest.
      this.handled.delete(this.handled.values().next().value!);
    }
    this.advance(cursor);
    return true;
  }

  /** Moves the resume point forward to `cursor` (never back), in `epoch` when given. */
  advance(cursor: number, epoch?: string): void {
    if (epoch !== undefined) this.epochName = epoch;
    if (this.newest === undefined || cursor > this.newest) this.newest = cursor;
  }

  /** Forgets the resume point: the next socket starts from the present. */
  forget(): void {
    this.newest = undefined;
    this.epochName = undefined;
    this.handled.clear();
  }

  /** Starts again at `cursor` of `epoch` (after `resync_required`: another database, or a
   * reload from history). */
  reset(cursor: number, epoch: string): void {
    this.newest = cursor;
    this.epochName = epoch;
    this.handled.clear();
  }
}
