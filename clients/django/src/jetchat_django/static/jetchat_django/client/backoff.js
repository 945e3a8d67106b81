export class Backoff {
    attempt = 0;
    initialMs;
    maxMs;
    factor;
    random;
    constructor(options = {}) {
        this.initialMs = options.initialMs ?? 500;
        this.maxMs = options.maxMs ?? 30_000;
        this.factor = options.factor ?? 2;
        this.random = options.random ?? Math.random;
    }
    /** How many delays were handed out since the last reset. */
    get attempts() {
        return this.attempt;
    }
    /** The next delay, in ms: in [ceiling / 2, ceiling) where the ceiling grows per attempt. */
    next() {
        const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
        this.attempt += 1;
        return Math.floor(ceiling / 2 + this.random() * (ceiling / 2));
    }
    /** After a connection that worked: the next delay starts small again. */
    reset() {
        this.attempt = 0;
    }
}
//# sourceMappingURL=backoff.js.map