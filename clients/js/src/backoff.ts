/** Reconnect delays: exponential, capped, with jitter so a server restart is not met by every
 * client at the same instant ("equal jitter": half the delay fixed, half random). */
export interface BackoffOptions {
  /** The first delay's ceiling, in ms (default 500). */
  initialMs?: number;
  /** No delay exceeds this, in ms (default 30 000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** A number in [0, 1); `Math.random` by default (tests pass their own). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly factor: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = options.initialMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.factor = options.factor ?? 2;
    this.random = options.random ?? Math.random;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The next delay, in ms: in [ceiling / 2, ceiling) where the ceiling grows per attempt. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * this.factor ** this.attempt);
    this.attempt += 1;
    return Math.floor(ceiling / 2 + this.random() * (ceiling / 2));
  }

  /** After a connection that worked: the next delay starts small again. */
  reset(): void {
    this.attempt = 0;
  }
}
