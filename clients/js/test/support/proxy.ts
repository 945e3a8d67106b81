// A TCP proxy between a client and jetchat that a test can make flaky: cut every connection,
// refuse new ones, or swallow what the server sends (a socket that looks open and hears nothing).

import { createServer, connect, type Server, type Socket } from 'node:net';

export class FlakyProxy {
  /** New connections are closed at once. */
  refusing = false;
  /** Bytes from the server are dropped (the client's still reach the server). */
  swallowing = false;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async to(targetPort: number): Promise<FlakyProxy> {
    let proxy!: FlakyProxy;
    const server = createServer((client) => {
      if (proxy.refusing) {
        client.destroy();
        return;
      }
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        proxy.sockets.add(socket);
        socket.on('close', () => proxy.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      client.on('data', (bytes) => upstream.write(bytes));
      upstream.on('data', (bytes) => {
        if (!proxy.swallowing) client.write(bytes);
      });
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    proxy = new FlakyProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Drops every open connection, as a network that went away. */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((ok) => this.server.close(ok));
  }
}
