// Sockets for the tests, loopback only: connecting and waiting with node:net, and
// the ones node:net cannot make (see libc.ts): a TCP port that is bound but not
// listening (a connect to it is refused at once), a listener that never calls
// accept() and whose backlog can be filled (a connect to it then hangs in SYN_SENT),
// and a unix datagram client that fills a syslog socket.
import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { AF_INET, AF_INET6, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_STREAM, libc, unixAddress, unixDatagramSocket } from './libc';

/** The loopback addresses the tests use. */
export type Loopback = '127.0.0.1' | '::1';

/** HOST:PORT as rexec and --listen take it: [HOST]:PORT for IPv6. */
export const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/** A TCP connection, once it is established (rejects with the connect error). */
export function dial(port: number, host = '127.0.0.1', localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Resolves when the socket has closed (at once if it already has). */
export function closed(s: Socket): Promise<void> {
  return new Promise((resolve) => (s.closed ? resolve() : s.once('close', () => resolve())));
}

/** Starts server listening on an ephemeral port of host; resolves to that port. */
export async function listenEphemeral(server: Server, host = '127.0.0.1'): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`not listening on a TCP port: ${address}`);
  return address.port;
}

/** A TCP socket bound to a free port of host, 127.0.0.1 or ::1. */
function loopbackSocket(host: Loopback): { fd: number; port: number } {
  const family = host === '::1' ? AF_INET6 : AF_INET;
  const fd = libc.socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error('socket failed');
  // sockaddr_in: family, port, 4-byte address; sockaddr_in6: family, port, flow info, 16-byte address, scope.
  const addr = Buffer.alloc(family === AF_INET6 ? 28 : 16);
  addr.writeUInt16LE(family, 0);
  if (family === AF_INET6) addr.writeUInt8(1, 23);
  else Buffer.from([127, 0, 0, 1]).copy(addr, 4);
  if (libc.bind(fd, addr, addr.length) !== 0) {
    libc.close(fd);
    throw new Error(`bind ${host} failed`);
  }
  const out = Buffer.alloc(addr.length);
  if (libc.getsockname(fd, out, [out.length]) !== 0) throw new Error('getsockname failed');
  return { fd, port: out.readUInt16BE(2) };
}

/** A port and the way to give it back. */
export interface HeldPort {
  readonly port: number;
  close(): void;
}

/** A listening socket that never accepts; its fd can be handed to a child. */
export interface DeafListener extends HeldPort {
  readonly fd: number;
}

/** A port on host that is bound (nobody else gets it) but refuses connections. */
export function closedPort({ host = '127.0.0.1' }: { host?: Loopback } = {}): HeldPort {
  const { fd, port } = loopbackSocket(host);
  return { port, close: () => void libc.close(fd) };
}

/**
 * A listener on host that never accepts.  With fill, its accept queue is filled
 * first (listen backlog 0 holds one connection), so the next connect to it waits in
 * SYN_SENT: the kernel drops SYNs to a listener whose queue is full.
 */
export async function deafListener({ fill = false, host = '127.0.0.1' }: { fill?: boolean; host?: Loopback } = {}): Promise<DeafListener> {
  const { fd, port } = loopbackSocket(host);
  if (libc.listen(fd, 0) !== 0) throw new Error('listen failed');
  const fillers: Socket[] = [];
  if (fill) {
    for (let i = 0; i < 8; i++) {
      const s = connect({ port, host });
      s.on('error', () => {});
      fillers.push(s);
      const connected = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), 300);
        s.once('connect', () => {
          clearTimeout(t);
          resolve(true);
        });
      });
      if (!connected) break;
    }
  }
  return {
    port,
    fd,
    close() {
      for (const s of fillers) s.destroy();
      libc.close(fd);
    },
  };
}

/** Send datagrams to the unix socket at path until it would block; returns how many went. */
export function fillDatagramSocket(path: string, max = 10000): number {
  const fd = unixDatagramSocket();
  try {
    const { addr, length } = unixAddress(path);
    if (libc.connect(fd, addr, length) !== 0) throw new Error(`connect ${path} failed`);
    const msg = Buffer.from('<30>filler: this datagram only fills the queue');
    let n = 0;
    while (n < max && Number(libc.send(fd, msg, msg.length, MSG_DONTWAIT)) >= 0) n++;
    return n;
  } finally {
    libc.close(fd);
  }
}
