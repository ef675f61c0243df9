/**
 * The listener for the server's connect-back (the command's stderr).  Unlike glibc's
 * rexec_af(), which listens on every address of the host, it listens only on the
 * local address of the main connection -- the one the server sees us at -- on an
 * ephemeral port, and it keeps only a connection that comes from the server's own
 * address: any other is closed and forgotten.  It never outlives the handshake.
 */
import { createServer, isIPv4, type Server, type Socket } from 'node:net';

/** 1.2.3.4 and ::ffff:1.2.3.4 are the same peer. */
export function sameAddress(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  const plain = (x: string) => {
    const lower = x.toLowerCase();
    const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
    return isIPv4(v4) ? v4 : lower;
  };
  return plain(a) === plain(b);
}

export class StderrListener {
  /** How many connections from other addresses were turned away. */
  strays = 0;
  private readonly accepted: Promise<Socket>;
  private settle: ((s: Socket) => void) | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly address: string,
  ) {
    this.accepted = new Promise((resolve) => (this.settle = resolve));
  }

  /** Listens on localAddress, port 0; accepts only from serverAddress. */
  static open(localAddress: string, serverAddress: string): Promise<StderrListener> {
    return new Promise((resolve, reject) => {
      let listener: StderrListener | undefined;
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
        if (listener?.settle && sameAddress(sock.remoteAddress, serverAddress)) {
          const settle = listener.settle;
          listener.settle = undefined;
          server.close();
          settle(sock);
        } else {
          if (listener) listener.strays++;
          sock.destroy();
        }
      });
      server.once('error', reject);
      server.listen({ host: localAddress, port: 0, backlog: 1, exclusive: true }, () => {
        server.removeListener('error', reject);
        server.on('error', () => {});
        const addr = server.address();
        if (addr === null || typeof addr === 'string') {
          server.close();
          reject(new Error('the stderr listener has no port'));
          return;
        }
        listener = new StderrListener(server, addr.port, addr.address);
        resolve(listener);
      });
    });
  }

  /** The server's connection, once it has come. */
  connection(): Promise<Socket> {
    return this.accepted;
  }

  close(): void {
    this.settle = undefined;
    this.server.close();
  }
}
