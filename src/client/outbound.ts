/**
 * The write side of the main connection, on its own file descriptor.
 *
 * A command that exits without reading all of its input makes the server's kernel
 * answer our next bytes with a reset.  Node destroys a socket -- closing its fd --
 * on the first failed write, and whatever output of the command was still in our
 * receive queue would be lost with it (`cat big | rexec host head -1` would print
 * nothing).  So stdin is written through a second Socket on a dup() of the fd: a
 * failed write closes only the duplicate, and the main Socket reads on to the end,
 * as glibc's client does with its one fd and poll().
 */
import { Socket, type SocketConstructorOpts } from 'node:net';
import { check, libc } from '../sys/koffi';

let dupFn: ((fd: number) => number) | undefined;

function dup(fd: number): number {
  dupFn ??= libc().func('int dup(int)') as (fd: number) => number;
  return check('dup', dupFn(fd));
}

/** A Socket that writes to main's connection on its own fd; main itself if that fails. */
export function writeSide(main: Socket): Socket {
  const fd = (main as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return main;
  let copy: number;
  try {
    copy = dup(fd);
  } catch {
    return main;
  }
  const options: SocketConstructorOpts = { fd: copy, readable: false, writable: true, allowHalfOpen: true };
  const side = new Socket(options);
  side.on('error', () => {});
  return side;
}
