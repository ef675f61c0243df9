/**
 * Sockets on a dup() of another Socket's file descriptor.
 *
 * Write side of the main connection.  A command that exits without reading all of
 * its input makes the server's kernel answer our next bytes with a reset.  Node
 * destroys a socket -- closing its fd -- on the first failed write, and whatever
 * output of the command was still in our receive queue would be lost with it
 * (`cat big | rexec host head -1` would print nothing).  So stdin is written through
 * a second Socket on a dup of the fd: a failed write closes only the duplicate, and
 * the main Socket reads on to the end, as glibc's client does with one fd and poll().
 *
 * Read side of the stderr connection.  net.Server hands out Sockets that read into a
 * fresh Buffer per chunk; a Socket made on a dup of the accepted fd can read into one
 * reused buffer (inbound.ts) instead, and the accepted one is closed.
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { dup } from '../sys/fd';
import { Inbound } from './inbound';

/** A new Socket on a dup of sock's fd, or undefined when there is no fd to dup. */
function duplicate(sock: Socket, options: Omit<SocketConstructorOpts, 'fd'> & { onread?: Inbound['onread'] }): Socket | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  try {
    const copy = dup(fd);
    const side = new Socket({ ...options, fd: copy, allowHalfOpen: true } as SocketConstructorOpts);
    side.on('error', () => {});
    return side;
  } catch {
    return undefined;
  }
}

/** A Socket that writes to main's connection on its own fd; main itself if that fails. */
export function writeSide(main: Socket): Socket {
  return duplicate(main, { readable: false, writable: true }) ?? main;
}

/**
 * The accepted stderr connection, re-opened to read into a reused buffer; the
 * accepted Socket (never read: it was accepted paused) is closed.  undefined when
 * that cannot be done: then read `accepted` as it is.
 */
export function readSide(accepted: Socket): { socket: Socket; inbound: Inbound } | undefined {
  const inbound = new Inbound();
  const socket = duplicate(accepted, { readable: true, writable: false, onread: inbound.onread });
  if (!socket) return undefined;
  accepted.destroy();
  return { socket, inbound: inbound.attach(socket) };
}
