/**
 * The main connection: every address of HOST in the resolver's order (limited to one
 * family by -4/-6), tried one after the other until one answers, as rcmd(3) does.
 *
 * The client makes its sockets itself (socket(2) and a non-blocking connect(2)
 * through koffi, waited for with poll(2) on koffi's thread so that the event loop
 * stays free) and only then hands the descriptor to a net.Socket: it knows which fd
 * it is on, and can dup() it for the write side without asking Node for it.
 */
import { lookup } from 'node:dns/promises';
import { isIP, type Socket } from 'node:net';
import { close, dup } from '../sys/fd';
import { ETIMEDOUT } from '../sys/errno';
import { SysError } from '../sys/koffi';
import { pollAsync } from '../sys/listen-socket';
import { finishConnect, POLLOUT, sockaddrOf, startConnect } from '../sys/socket';
import type { Family } from './cli';
import { FdSocket } from './fd-socket';
import type { Inbound } from './inbound';
import type { Deadline } from './deadline';
import { ClientError, reason } from './errors';

/**
 * A Socket that writes to the main connection through a dup() of its descriptor, for
 * stdin; the connection's own Socket when no descriptor is left to dup.
 *
 * Why: a command that exits without reading all of its input makes the server's
 * kernel answer our next bytes with a reset.  Node destroys a socket -- closing its
 * fd -- on the first failed write, and whatever output of the command was still in
 * our receive queue would be lost with it (`cat big | rexec host head -1` would
 * print nothing).  Through a duplicate, a failed write closes only the duplicate and
 * the main Socket reads on to the end, as glibc's client does with one fd and
 * poll().  end() on it is shutdown(SHUT_WR) of the connection itself.
 */
export function writeSide(main: FdSocket): Socket {
  if (main.destroyed) return main; // its fd is closed, its number maybe reused
  try {
    return FdSocket.adopt(dup(main.fd), { readable: false, writable: true, allowHalfOpen: true });
  } catch {
    return main; // out of descriptors: write on the main Socket itself
  }
}

async function addresses(host: string, family: Family): Promise<string[]> {
  const literal = isIP(host.replace(/%.*$/, ''));
  if (literal !== 0) {
    if (family !== 0 && literal !== family) throw new ClientError(`${host}: not an IPv${family} address`);
    return [host];
  }
  try {
    const found = await lookup(host, { all: true, family, verbatim: true });
    if (found.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
    return [...new Set(found.map((a) => a.address))];
  } catch (e) {
    throw new ClientError(`${host}: ${reason(e)}${family ? ` (IPv${family})` : ''}`);
  }
}

/** poll(2)'s timeout for what is left of the deadline: -1 is none, 0 is none left. */
function pollTimeout(deadline: Deadline): number {
  return deadline.ms > 0 ? Math.min(Math.ceil(deadline.remaining()), 2 ** 31 - 1) : -1;
}

/**
 * One address: a connected, non-blocking, close-on-exec descriptor, or a SysError
 * (ETIMEDOUT when the deadline passes first).
 */
function dial(address: string, port: number, deadline: Deadline): Promise<number> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = startConnect(undefined, sockaddrOf(address, port));
    } catch (e) {
      reject(e);
      return;
    }
    const fail = (e: unknown) => {
      close(fd);
      reject(e);
    };
    const wait = () => {
      const timeout = pollTimeout(deadline);
      if (timeout === 0) return fail(new SysError('connect', ETIMEDOUT));
      pollAsync([{ fd, events: POLLOUT }], timeout, (revents) => {
        if (revents instanceof Error) return fail(revents);
        // Nothing yet: poll's timeout, or a signal (EINTR); the clock decides.
        if (revents[0] === 0) return wait();
        try {
          finishConnect(fd);
        } catch (e) {
          return fail(e);
        }
        resolve(fd);
      });
    };
    wait();
  });
}

/** Connects; the socket reads into inbound. */
export async function connectToServer(
  host: string,
  port: number,
  family: Family,
  deadline: Deadline,
  inbound: Inbound,
): Promise<FdSocket> {
  const list = await deadline.race(addresses(host, family), `the address of ${host}`);
  const failures: string[] = [];
  for (const address of list) {
    let fd: number;
    try {
      fd = await dial(address, port, deadline);
    } catch (e) {
      const where = address === host ? `port ${port}` : `${address} port ${port}`;
      failures.push(`${where}: ${reason(e)}`);
      if (deadline.remaining() === 0) break;
      continue;
    }
    const socket = FdSocket.adopt(fd, { readable: true, writable: true, allowHalfOpen: true, onread: inbound.onread });
    socket.setKeepAlive(true);
    inbound.attach(socket);
    return socket;
  }
  throw new ClientError(`${host}: cannot connect: ${failures.join('; ')}`);
}
