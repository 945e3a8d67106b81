/** A small typed event emitter (no dependency, same in browsers and Node). */
export class Emitter {
    listeners = new Map();
    /** Calls `listener` on every `event`; returns the function that stops it. */
    on(event, listener) {
        let set = this.listeners.get(event);
        if (!set)
            this.listeners.set(event, (set = new Set()));
        set.add(listener);
        return () => this.off(event, listener);
    }
    /** Calls `listener` on the next `event` only. */
    once(event, listener) {
        const off = this.on(event, (value) => {
            off();
            listener(value);
        });
        return off;
    }
    off(event, listener) {
        this.listeners.get(event)?.delete(listener);
    }
    /** The next `event` that satisfies `accept`, as a promise. */
    next(event, accept = () => true) {
        return new Promise((resolve) => {
            const off = this.on(event, (value) => {
                if (accept(value)) {
                    off();
                    resolve(value);
                }
            });
        });
    }
    emit(event, value) {
        for (const listener of [...(this.listeners.get(event) ?? [])]) {
            try {
                listener(value);
            }
            catch (error) {
                // One app listener that throws must not stop the client or the other listeners.
                console.error('jetchat client: an event listener threw', error);
            }
        }
    }
}
//# sourceMappingURL=emitter.js.map