// A real jetchat for the integration tests: the debug binary (JETCHAT_BIN, else
// $CARGO_TARGET_DIR/debug/jetchat, else the repository's target/), `jetchat serve` with its
// embedded nats-server and SQLite in a temporary data directory, on a free port; tokens from
// `jetchat token`. It can be stopped and started again on the same port and data.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { WebSocket } from 'ws';
import { Client, type ClientOptions } from '../../src/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const bin =
  process.env.JETCHAT_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug/jetchat');

const env = {
  ...process.env,
  JWT_SECRET: 'js-client-test-secret',
  RUST_LOG: process.env.TEST_LOG ? 'info' : 'warn',
};

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

export class Jetchat {
  private process: ChildProcess | undefined;
  private exited: Promise<unknown> | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'jetchat-js-'));

  private constructor(
    readonly port: number,
    private readonly settings: Record<string, string>,
  ) {}

  static async start(settings: Record<string, string> = {}): Promise<Jetchat> {
    const jetchat = new Jetchat(await freePort(), settings);
    await jetchat.startAgain();
    return jetchat;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A Django-style access token for `user`, valid `minutes`; `name` adds the profile claim
   * jetchat records in its user directory. */
  token(user: number, minutes = 60, name?: string): string {
    const args = ['token', String(user), `--minutes=${minutes}`, ...(name ? [`--name=${name}`] : [])];
    return execFileSync(bin, args, { env }).toString().trim();
  }

  /** A client of `user` (Node's WebSocket from `ws`; fast reconnects for tests). */
  client(user: number, options: Partial<ClientOptions> = {}): Client {
    return new Client({
      url: this.url,
      token: this.token(user),
      WebSocket: WebSocket as unknown as ClientOptions['WebSocket'],
      backoff: { initialMs: 100, maxMs: 1_000 },
      ...options,
    });
  }

  async startAgain(): Promise<void> {
    const child = spawn(bin, ['serve'], {
      env: {
        ...env,
        BIND_ADDR: `127.0.0.1:${this.port}`,
        DATA_DIR: join(this.dir, 'data'),
        MEDIA_DIR: join(this.dir, 'media'),
        ...this.settings,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    this.process = child;
    this.exited = new Promise((ok) => child.once('exit', ok));
    for (let i = 0; ; i++) {
      if (child.exitCode !== null) throw new Error(`jetchat exited with ${child.exitCode}`);
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return;
      } catch {
        // not listening yet
      }
      if (i > 600) throw new Error('jetchat did not become healthy');
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }

  /** Stops it as an orchestrator would (SIGTERM) and waits for the exit. */
  async stop(): Promise<void> {
    this.process?.kill('SIGTERM');
    await this.exited;
    this.process = undefined;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once `check` is truthy (polled), failing after 20 s. */
export async function eventually<T>(what: string, check: () => T | Promise<T>): Promise<NonNullable<Awaited<T>>> {
  for (let i = 0; i < 400; i++) {
    const value = await check();
    if (value) return value as NonNullable<Awaited<T>>;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  throw new Error(`never happened: ${what}`);
}

/** One jetchat for a test file: started before its tests, stopped after them, closing every
 * client `client()` made. */
export function useJetchat(): { jetchat: () => Jetchat; client: (user: number, options?: Partial<ClientOptions>) => Client } {
  let jetchat: Jetchat | undefined;
  const clients: Client[] = [];
  beforeAll(async () => {
    jetchat = await Jetchat.start();
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await jetchat?.dispose();
  });
  const started = () => {
    if (!jetchat) throw new Error('jetchat has not started');
    return jetchat;
  };
  return {
    jetchat: started,
    client: (user, options) => {
      const client = started().client(user, options);
      clients.push(client);
      return client;
    },
  };
}
