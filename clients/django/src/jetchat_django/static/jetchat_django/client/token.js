/** Access tokens: a fixed one, or a provider asked again when the token nears its `exp`, when
 * the server refused it, or when a socket was closed for its expiry (4001). */
/** The `exp` claim of a JWT (Unix seconds), or `undefined` when it has none or is not a JWT.
 * Only read, never verified: the server verifies. */
export function tokenExp(token) {
    const payload = token.split('.')[1];
    if (!payload)
        return undefined;
    try {
        const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
        const json = JSON.parse(atob(base64.padEnd(base64.length + ((4 - (base64.length % 4)) % 4), '=')));
        return typeof json?.exp === 'number' ? json.exp : undefined;
    }
    catch {
        return undefined;
    }
}
/** Holds the current token and knows when to ask for the next one. */
export class TokenKeeper {
    source;
    token;
    asking;
    renewBeforeMs;
    now;
    constructor(source, options = {}) {
        this.source = source;
        this.renewBeforeMs = options.renewBeforeMs ?? 60_000;
        this.now = options.now ?? Date.now;
        if (typeof source === 'string')
            this.token = source;
    }
    /** Whether a new token can be had at all (a provider, not a fixed string). */
    get renewable() {
        return typeof this.source === 'function';
    }
    /** The token to use now: the one held, unless it has expired and a provider can do better. */
    async current() {
        if (this.token !== undefined && !(this.renewable && this.expired(this.token))) {
            return this.token;
        }
        return this.fresh();
    }
    /** A new token from the provider (one call at a time); the fixed token otherwise. */
    fresh() {
        if (typeof this.source === 'string')
            return Promise.resolve(this.source);
        const provider = this.source;
        this.asking ??= Promise.resolve()
            .then(provider)
            .then((token) => {
            this.token = token;
            return token;
        })
            .finally(() => {
            this.asking = undefined;
        });
        return this.asking;
    }
    /** Whether `token` is past its `exp` (a token without one never is). */
    expired(token) {
        const exp = tokenExp(token);
        return exp !== undefined && exp * 1000 <= this.now();
    }
    /** In how many ms the socket should get a new token, or `undefined` when it cannot or
     * need not (a fixed token, a token without `exp`). */
    renewalDelay(token) {
        const exp = tokenExp(token);
        if (exp === undefined || !this.renewable)
            return undefined;
        const left = exp * 1000 - this.now();
        return Math.max(0, left - Math.min(this.renewBeforeMs, left / 2));
    }
}
//# sourceMappingURL=token.js.map