// A real jetchat for the browser tests: started on a port and a data directory of its own,
// stopped and started again on the same ones (a restart), with DEV_LOGIN for the web app;
// `upsertUser` publishes Django's `upsert_user` on its embedded nats-server, and `subscribe`
// hears what jetchat publishes there (Django's side of `push_needed`).
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

  /** A core-NATS subscription on the embedded nats-server (`chat.events.*.push_needed`, as
   * Django subscribes): resolves once the server has it; `next(accept)` is the first event
   * heard, before or after the call, that `accept` takes. */
  async subscribe(subject) {
    const url = new URL(readFileSync(join(this.dir, 'data/nats/url'), 'utf8').trim());
    return natsSubscribe(url.hostname, Number(url.port), subject);
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

/** A core-NATS subscriber (the text protocol: CONNECT, SUB, PING until its PONG, then `MSG` or
 * `HMSG` frames whose JSON payloads it keeps). */
function natsSubscribe(host, port, subject) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const heard = [];
    const waiting = [];
    let buffer = Buffer.alloc(0);
    const subscription = {
      next(accept = () => true) {
        const found = heard.find(accept);
        if (found) return Promise.resolve(found);
        return new Promise((ok) => waiting.push({ accept, ok }));
      },
      close() {
        socket.destroy();
      },
    };
    const deliver = (event) => {
      heard.push(event);
      for (const waiter of waiting.filter((w) => w.accept(event))) {
        waiting.splice(waiting.indexOf(waiter), 1);
        waiter.ok(event);
      }
    };
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const [op, ...args] = buffer.subarray(0, eol).toString().split(' ');
        if (op === 'MSG' || op === 'HMSG') {
          // MSG <subject> <sid> [reply] <bytes>; HMSG ... <header bytes> <total bytes>
          const total = Number(args[args.length - 1]);
          const headers = op === 'HMSG' ? Number(args[args.length - 2]) : 0;
          if (buffer.length < eol + 2 + total + 2) return; // the rest is still coming
          const payload = buffer.subarray(eol + 2 + headers, eol + 2 + total).toString();
          buffer = buffer.subarray(eol + 2 + total + 2);
          deliver(JSON.parse(payload));
          continue;
        }
        buffer = buffer.subarray(eol + 2);
        if (op === 'INFO') socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\nSUB ${subject} 1\r\nPING\r\n`);
        else if (op === 'PONG') resolve(subscription);
        else if (op === 'PING') socket.write('PONG\r\n');
        else if (op === '-ERR') reject(new Error(`nats: ${args.join(' ')}`));
      }
    });
  });
}
