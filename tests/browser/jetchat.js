// A real jetchat for the browser tests: started on a port and a data directory of its own,
// stopped and started again on the same ones (a restart), with DEV_LOGIN for the web app;
// `upsertUser` publishes Django's `upsert_user` on its embedded nats-server.
//
//   JETCHAT_BIN (default ../../target/debug/jetchat), NATS_SERVER_BIN (for the embedded mode)

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
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

  /** Django's `upsert_user` (docs/events.md): a user's new name and avatar, published on
   * `CHAT_IN` through the embedded nats-server (its URL is in `DATA_DIR/nats/url`). */
  async upsertUser(userId, displayName, avatarUrl = null) {
    const command = {
      type: 'upsert_user', v: 1, command_id: `browser-${userId}-${Date.now()}-${Math.random()}`,
      user_id: userId, display_name: displayName, avatar_url: avatarUrl, updated_at: new Date().toISOString(),
    };
    const url = new URL(readFileSync(join(this.dir, 'data/nats/url'), 'utf8').trim());
    await natsPublish(url.hostname, Number(url.port), 'chat.in.users.upsert', JSON.stringify(command));
  }

  async remove() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One core-NATS publish (the text protocol: CONNECT, PUB, then PING until its PONG, so the
 * server has it): JetStream's `CHAT_IN` stores what is published on its subjects. */
function natsPublish(host, port, subject, payload) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let seen = '';
    socket.setEncoding('utf8');
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      seen += chunk;
      if (seen.startsWith('INFO') && !socket.sent) {
        socket.sent = true;
        const body = Buffer.from(payload);
        socket.write(`CONNECT {"verbose":false,"pedantic":false}\r\nPUB ${subject} ${body.length}\r\n`);
        socket.write(body);
        socket.write('\r\nPING\r\n');
      }
      if (seen.includes('-ERR')) reject(new Error(`nats: ${seen}`));
      if (seen.includes('PONG')) {
        socket.end();
        resolve();
      }
    });
  });
}
