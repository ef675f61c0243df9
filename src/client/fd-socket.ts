/**
 * net.Socket on a descriptor this client made itself (connect.ts, stderr-listener.ts)
 * with `new net.Socket({ fd })`, the public way: the Socket remembers its fd, so that
 * nothing needs Node's private handle to learn it.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { close } from '../sys/fd';
import type { Inbound } from './inbound';

/** net.Socket's options, with `onread`, which the constructor honours but @types/node 20 lacks. */
export type FdSocketOptions = Omit<SocketConstructorOpts, 'fd'> & { readonly onread?: Inbound['onread'] };

export class FdSocket extends Socket {
  private constructor(
    /** Valid while the Socket is not destroyed. */
    readonly fd: number,
    options: FdSocketOptions,
  ) {
    super({ ...options, fd } as SocketConstructorOpts);
  }

  /**
   * A Socket on fd, which it owns from now on (destroy() closes it); when none can
   * be made, fd is closed.
   */
  static adopt(fd: number, options: FdSocketOptions): FdSocket {
    let socket: FdSocket;
    try {
      socket = new FdSocket(fd, options);
    } catch (e) {
      close(fd);
      throw e;
    }
    // Errors are seen where they matter (status, relay); none may go unhandled.
    socket.on('error', () => {});
    return socket;
  }
}
