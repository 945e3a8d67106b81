/** Where a client stands in the server's change journal: the newest `cursor` handled and the
 * `epoch` it belongs to, plus the cursors handled lately, so a frame the catch-up sends again
 * (the server's `SYNC_OVERLAP`) is dropped instead of shown twice — also by a new `Client`
 * after an app restart, since the resume point carries the newest of them. */
/** How many handled cursors a resume point carries: far more than one user gets in the
 * server's 2 s `SYNC_OVERLAP`. */
export const RESUME_HANDLED = 500;
export class CursorTracker {
    remember;
    newest;
    epochName;
    handled = new Set();
    /** The highest cursors handled, highest first, at most `RESUME_HANDLED`: kept as they come
     * (mostly in order, so an insert is at the front), cheap to read on every frame. */
    newestHandled = [];
    constructor(start, remember = 10_000) {
        this.remember = remember;
        if (start) {
            this.newest = start.cursor;
            this.epochName = start.epoch;
            for (const cursor of start.handled ?? []) {
                if (Number.isSafeInteger(cursor) && cursor <= start.cursor)
                    this.remembered(cursor);
            }
        }
    }
    /** What to resume from (`?since=&epoch=`, and the cursors handled lately), or `undefined`
     * before the first `unread`. */
    get resumePoint() {
        if (this.newest === undefined)
            return undefined;
        return { cursor: this.newest, epoch: this.epochName, handled: [...this.newestHandled] };
    }
    /** Records a stored change's cursor; `false` when it was handled already (drop the frame). */
    handle(cursor) {
        if (this.handled.has(cursor))
            return false;
        this.remembered(cursor);
        this.advance(cursor);
        return true;
    }
    /** Moves the resume point forward to `cursor` (never back), in `epoch` when given. */
    advance(cursor, epoch) {
        if (epoch !== undefined)
            this.epochName = epoch;
        if (this.newest === undefined || cursor > this.newest)
            this.newest = cursor;
    }
    /** Forgets the resume point: the next socket starts from the present. */
    forget() {
        this.newest = undefined;
        this.epochName = undefined;
        this.handled.clear();
        this.newestHandled.length = 0;
    }
    /** Starts again at `cursor` of `epoch` (after `resync_required`: another database, or a
     * reload from history). */
    reset(cursor, epoch) {
        this.newest = cursor;
        this.epochName = epoch;
        this.handled.clear();
        this.newestHandled.length = 0;
    }
    remembered(cursor) {
        this.handled.add(cursor);
        const newest = this.newestHandled;
        let at = 0;
        while (at < newest.length && newest[at] > cursor)
            at++;
        if (at < RESUME_HANDLED) {
            newest.splice(at, 0, cursor);
            if (newest.length > RESUME_HANDLED)
                newest.pop();
        }
        if (this.handled.size > this.remember) {
            // Sets iterate in insertion order: forget the oldest.
            this.handled.delete(this.handled.values().next().value);
        }
    }
}
//# sourceMappingURL=cursor.js.map