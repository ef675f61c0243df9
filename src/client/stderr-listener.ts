/**
 * The listener for the server's connect-back (the command's stderr).  Unlike glibc's
 * rexec_af(), which listens on every address of the host, it listens only on the
 * local address of the main connection -- the one the server sees us at -- on an
 * ephemeral port, and it keeps only a connection that comes from the server's own
 * address: any other is closed and counted.  It never outlives the handshake.
 *
 * The descriptors are ours: socket(2), bind(2), listen(2) and accept4(2) through
 * koffi, the wait for a connection in poll(2) on koffi's thread (the event loop stays
 * free).  The connection kept becomes a net.Socket that reads into one reused buffer
 * (inbound.ts): net.Server's Sockets would read into a fresh Buffer per chunk, ~35 MiB
 * of garbage on a 1 GiB stderr.
 */
import { isIPv4, type Socket } from 'node:net';
import { close } from '../sys/fd';
import { acceptNow, listenOn, pollAsync } from '../sys/listen-socket';
import { localAddress, peerAddress, POLLIN, SHUT_RDWR, shutdown, sockaddrOf } from '../sys/socket';
import { FdSocket } from './fd-socket';
import { Inbound } from './inbound';

/** The plain form of an address: ::ffff:1.2.3.4 is 1.2.3.4, case does not count. */
function plain(address: string): string {
  const lower = address.toLowerCase();
  const v4 = lower.startsWith('::ffff:') ? lower.slice(7) : lower;
  return isIPv4(v4) ? v4 : lower;
}

/** 1.2.3.4 and ::ffff:1.2.3.4 are the same peer. */
export function sameAddress(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return plain(a) === plain(b);
}

export class StderrListener {
  /** How many connections from other addresses were turned away. */
  strays = 0;
  private readonly accepted: Promise<Socket>;
  private settle: ((s: Socket) => void) | undefined;
  private fail: ((e: unknown) => void) | undefined;
  /** A poll(2) on the listening fd is running on koffi's thread. */
  private polling = false;
  private closed = false;

  private constructor(
    private readonly fd: number,
    readonly port: number,
    readonly address: string,
    private readonly serverAddress: string,
    /** The buffer the server's connection reads into. */
    readonly inbound: Inbound,
  ) {
    this.accepted = new Promise((resolve, reject) => {
      this.settle = resolve;
      this.fail = reject;
    });
    // A failure is seen by whoever awaits connection(); none goes unhandled before.
    this.accepted.catch(() => {});
  }

  /**
   * Listens on `local` (an IP literal), port 0; accepts only from `server`.  Throws a
   * SysError when it cannot listen there.
   */
  static open(local: string, server: string, inbound = new Inbound()): StderrListener {
    // An IPv4-mapped address is IPv4 on the wire: the server dials back the IPv4 one.
    const fd = listenOn(sockaddrOf(plain(local), 0), 1);
    let listener: StderrListener;
    try {
      const bound = localAddress(fd);
      listener = new StderrListener(fd, bound.port, bound.address, server, inbound);
    } catch (e) {
      close(fd);
      throw e;
    }
    listener.waitForConnection();
    return listener;
  }

  /** The server's connection, once it has come; rejects with a SysError if accepting fails. */
  connection(): Promise<Socket> {
    return this.accepted;
  }

  /** Stops listening (at once: the port refuses connections from now on). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.settle = undefined;
    this.fail = undefined;
    if (!this.polling) {
      close(this.fd);
      return;
    }
    // Wake the thread in poll(); it closes the fd when it is done with it.  Closing
    // it here could let a new descriptor take its number while that poll still runs
    // (or has yet to start) on it.
    try {
      shutdown(this.fd, SHUT_RDWR);
    } catch {
      // ENOTCONN: shut down already, which has woken the poll.
    }
  }

  private waitForConnection(): void {
    this.polling = true;
    pollAsync([{ fd: this.fd, events: POLLIN }], -1, (revents) => {
      this.polling = false;
      if (this.closed) {
        close(this.fd);
        return;
      }
      if (revents instanceof Error) {
        this.failWith(revents);
        return;
      }
      this.acceptWaiting();
    });
  }

  /** Takes every waiting connection: the server's is kept, the others are closed. */
  private acceptWaiting(): void {
    for (;;) {
      let accepted;
      try {
        accepted = acceptNow(this.fd);
      } catch (e) {
        this.failWith(e);
        return;
      }
      if (accepted.kind === 'none') break;
      if (accepted.kind === 'exhausted') {
        this.failWith(accepted.error);
        return;
      }
      if (this.fromServer(accepted.fd)) {
        this.keep(accepted.fd);
        return;
      }
      close(accepted.fd);
      this.strays++;
    }
    this.waitForConnection();
  }

  private fromServer(fd: number): boolean {
    try {
      return sameAddress(peerAddress(fd).address, this.serverAddress);
    } catch {
      return false; // it is gone already (ENOTCONN)
    }
  }

  private keep(fd: number): void {
    const settle = this.settle!;
    const fail = this.fail!;
    this.close();
    let socket: Socket;
    try {
      socket = FdSocket.adopt(fd, { readable: true, writable: false, allowHalfOpen: true, onread: this.inbound.onread });
    } catch (e) {
      fail(e);
      return;
    }
    this.inbound.attach(socket);
    settle(socket);
  }

  private failWith(e: unknown): void {
    const fail = this.fail!;
    this.close();
    fail(e);
  }
}
