// The few socket calls the harness needs that node:net cannot make (unix datagram
// sockets, a bound socket that never listens, a listener that never accepts), through
// koffi.  Test code only: the product's C calls live in src/sys/.
import koffi from 'koffi';

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  listen(fd: number, backlog: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number | bigint;
  recv(fd: number, buf: Buffer, len: number, flags: number): number | bigint;
  getsockname(fd: number, addr: Buffer, len: number[]): number;
  close(fd: number): number;
}

const lib = koffi.load('libc.so.6');
export const libc: Libc = {
  socket: lib.func('int socket(int, int, int)'),
  bind: lib.func('int bind(int, const void *, uint32_t)'),
  listen: lib.func('int listen(int, int)'),
  connect: lib.func('int connect(int, const void *, uint32_t)'),
  send: lib.func('intptr_t send(int, const void *, size_t, int)'),
  recv: lib.func('intptr_t recv(int, void *, size_t, int)'),
  getsockname: lib.func('int getsockname(int, void *, _Inout_ uint32_t *)'),
  close: lib.func('int close(int)'),
};

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const MSG_DONTWAIT = 0x40;

/** A struct sockaddr_un for path, and the length to pass with it. */
export function unixAddress(path: string): { addr: Buffer; length: number } {
  const addr = Buffer.alloc(110);
  addr.writeUInt16LE(AF_UNIX, 0);
  addr.write(path, 2);
  return { addr, length: 2 + Buffer.byteLength(path) + 1 };
}

/** A non-blocking unix datagram socket. */
export function unixDatagramSocket(): number {
  const fd = libc.socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error('socket(AF_UNIX, SOCK_DGRAM) failed');
  return fd;
}
