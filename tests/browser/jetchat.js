// A real jetchat for the browser tests: started on a port and a data directory of its own,
// stopped and started again on the same ones (a restart), with DEV_LOGIN for the web app.
//
//   JETCHAT_BIN (default ../../target/debug/jetchat), NATS_SERVER_BIN (for the embedded mode)

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const bin = process.env.JETCHAT_BIN ?? join(root, 'target/debug/jetchat');

export async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

export class Jetchat {
  constructor(env = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'jetchat-web-'));
    this.env = { ...process.env, JWT_SECRET: 'browser-test-secret', RUST_LOG: 'warn', DEV_LOGIN: 'true', ...env };
  }

  async start() {
    this.port ??= await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    this.process = spawn(bin, ['serve'], {
      env: { ...this.env, BIND_ADDR: `127.0.0.1:${this.port}`, DATA_DIR: join(this.dir, 'data'), MEDIA_DIR: join(this.dir, 'media') },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const exited = new Promise((ok) => this.process.once('exit', ok));
    this.exited = exited;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${this.url}/healthz`)).ok) return this;
      } catch {}
      if (this.process.exitCode !== null) throw new Error(`jetchat exited with ${this.process.exitCode}`);
      if (i > 600) throw new Error('jetchat did not become healthy');
      await new Promise((ok) => setTimeout(ok, 100));
    }
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill('SIGTERM');
    await this.exited;
  }

  async remove() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
