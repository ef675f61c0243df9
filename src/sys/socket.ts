/**
 * The sockets of one connection: what the launcher handed over, reading the
 * request without blocking or over-reading, answering, and dialling the stderr
 * channel back.  All synchronous: a per-connection rexecd is one straight line of
 * system calls, like the C servers.
 *
 * sockaddr layouts (<netinet/in.h>, Linux): sockaddr_in is family u16, port u16
 * big-endian, address 4 bytes at 4; sockaddr_in6 is family, port, flowinfo u32 at
 * 4, address 16 bytes at 8, scope id at 24.  pollfd is { int fd; short events;
 * short revents; } (8 bytes).
 */
import { check, cfunc, errno, libc, SysError } from './koffi';
import { close } from './fd';
import { EAGAIN, EINPROGRESS, EINTR, ETIMEDOUT } from './errno';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_STREAM = 1;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
const SO_TYPE = 3;
const SO_ERROR = 4;
const SO_ACCEPTCONN = 30;
const SO_DOMAIN = 39;
const MSG_PEEK = 2;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLFD_SIZE = 8;
const SOCKADDR_STORAGE = 128;
const SOCKADDR_IN_SIZE = 16;
const SOCKADDR_IN6_SIZE = 28;
export const SHUT_RDWR = 2;

const getpeername = cfunc<(fd: number, addr: Buffer, len: number[]) => number>(libc, 'int getpeername(int, void *, _Inout_ uint32_t *)');
const getsockname = cfunc<(fd: number, addr: Buffer, len: number[]) => number>(libc, 'int getsockname(int, void *, _Inout_ uint32_t *)');
const getsockopt = cfunc<(fd: number, level: number, name: number, value: Buffer, len: number[]) => number>(libc, 'int getsockopt(int, int, int, void *, _Inout_ uint32_t *)');
const socketC = cfunc<(domain: number, type: number, protocol: number) => number>(libc, 'int socket(int, int, int)');
const bind = cfunc<(fd: number, addr: Buffer, len: number) => number>(libc, 'int bind(int, const void *, uint32_t)');
const connect = cfunc<(fd: number, addr: Buffer, len: number) => number>(libc, 'int connect(int, const void *, uint32_t)');
export const poll = cfunc<(fds: Buffer, n: number, timeout: number) => number>(libc, 'int poll(void *, unsigned long, int)');
const shutdownC = cfunc<(fd: number, how: number) => number>(libc, 'int shutdown(int, int)');
const inetPton = cfunc<(af: number, src: string, dst: Buffer) => number>(libc, 'int inet_pton(int, const char *, void *)');
const ifNameToIndex = cfunc<(name: string) => number>(libc, 'unsigned int if_nametoindex(const char *)');
const recv = cfunc<(fd: number, buf: Buffer, len: number, flags: number) => number>(libc, 'intptr_t recv(int, void *, size_t, int)');
const send = cfunc<(fd: number, buf: Buffer, len: number, flags: number) => number>(libc, 'intptr_t send(int, const void *, size_t, int)');
const inetNtop = cfunc<(af: number, src: Buffer, dst: Buffer, size: number) => unknown>(libc, 'const char *inet_ntop(int, const void *, char *, uint32_t)');

/** A socket address as the kernel gives it, with its family and port decoded. */
export interface SockAddr {
  readonly family: number;
  readonly port: number;
  /** Numeric form; an IPv4-mapped IPv6 address is shown as plain IPv4. */
  readonly address: string;
  /** The raw sockaddr, to connect or bind with. */
  readonly raw: Buffer;
}

function ntop(family: number, bytes: Buffer): string {
  const text = Buffer.alloc(64);
  inetNtop(family, bytes, text, text.length);
  return text.toString('latin1', 0, text.indexOf(0));
}

export function decodeAddr(raw: Buffer): SockAddr {
  const family = raw.readUInt16LE(0);
  const port = raw.readUInt16BE(2);
  let address: string;
  if (family === AF_INET) {
    address = ntop(AF_INET, raw.subarray(4, 8));
  } else if (family === AF_INET6) {
    const bytes = raw.subarray(8, 24);
    const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    address = mapped ? ntop(AF_INET, bytes.subarray(12, 16)) : ntop(AF_INET6, bytes);
  } else {
    address = `(address family ${family})`;
  }
  return { family, port, address, raw };
}

function addressOf(call: 'getpeername' | 'getsockname', fd: number): SockAddr {
  const raw = Buffer.alloc(SOCKADDR_STORAGE);
  const len = [SOCKADDR_STORAGE];
  check(call, (call === 'getpeername' ? getpeername : getsockname)(fd, raw, len));
  return decodeAddr(raw.subarray(0, len[0]));
}

export const peerAddress = (fd: number): SockAddr => addressOf('getpeername', fd);
export const localAddress = (fd: number): SockAddr => addressOf('getsockname', fd);

/**
 * The sockaddr for an IP literal and a port: sockaddr_in, or sockaddr_in6 for an
 * IPv6 address, which may name its zone (fe80::1%eth0, or %2 by index) as
 * getaddrinfo(3) accepts.  Throws on anything else.
 */
export function sockaddrOf(address: string, port: number): Buffer {
  const v6 = address.includes(':');
  const [literal = '', zone] = v6 ? address.split('%', 2) : [address];
  const raw = Buffer.alloc(v6 ? SOCKADDR_IN6_SIZE : SOCKADDR_IN_SIZE);
  raw.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  raw.writeUInt16BE(port, 2);
  if (inetPton(v6 ? AF_INET6 : AF_INET, literal, raw.subarray(v6 ? 8 : 4, v6 ? 24 : 8)) !== 1) {
    throw new Error(`"${address}" is not an IPv4 or IPv6 address`);
  }
  if (zone !== undefined) {
    const index = /^\d+$/.test(zone) ? Number(zone) : ifNameToIndex(zone);
    if (!(index > 0 && index <= 0xffffffff)) throw new Error(`"${address}": no network interface "${zone}"`);
    raw.writeUInt32LE(index, 24);
  }
  return raw;
}

/** The same address with another port. */
export function withPort(addr: SockAddr, port: number): Buffer {
  const raw = Buffer.from(addr.raw);
  raw.writeUInt16BE(port, 2);
  return raw;
}

function intOption(fd: number, name: number): number | undefined {
  const value = Buffer.alloc(4);
  return getsockopt(fd, SOL_SOCKET, name, value, [4]) === -1 ? undefined : value.readInt32LE(0);
}

/**
 * What a launcher handed over on fd: an accepted TCP connection (inetd "nowait",
 * systemd Accept=yes), a listening TCP socket (inetd "wait", systemd Accept=no), or
 * something else (a terminal, a file, a unix socket).
 */
export function tcpSocketKind(fd: number): 'connection' | 'listener' | 'other' {
  if (intOption(fd, SO_TYPE) !== SOCK_STREAM) return 'other';
  const domain = intOption(fd, SO_DOMAIN);
  if (domain !== AF_INET && domain !== AF_INET6) return 'other';
  return intOption(fd, SO_ACCEPTCONN) === 1 ? 'listener' : 'connection';
}

/**
 * Wait until fd is ready for `events` or the deadline (a performance.now() value)
 * passes.  Returns false on timeout.
 */
export function waitFor(fd: number, events: number, deadline: number): boolean {
  const pfd = Buffer.alloc(POLLFD_SIZE);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  for (;;) {
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0) return false;
    const n = poll(pfd, 1, Math.min(left, 2 ** 31 - 1));
    if (n > 0) return true;
    if (n === 0) continue; // poll's rounding: re-check the clock
    const e = errno();
    if (e !== EINTR) throw new SysError('poll', e);
  }
}

/** recv without blocking; returns 0 at EOF, -1 when nothing is there yet. */
export function recvNow(fd: number, buf: Buffer, length: number, peek: boolean): number {
  const n = Number(recv(fd, buf, length, MSG_DONTWAIT | (peek ? MSG_PEEK : 0)));
  if (n >= 0) return n;
  const e = errno();
  if (e === EAGAIN || e === EINTR) return -1;
  throw new SysError('recv', e);
}

/** send without blocking or SIGPIPE; returns the bytes sent, -1 when the socket is full. */
export function sendNow(fd: number, buf: Buffer): number {
  const n = Number(send(fd, buf, buf.length, MSG_DONTWAIT | MSG_NOSIGNAL));
  if (n >= 0) return n;
  const e = errno();
  if (e === EAGAIN || e === EINTR) return -1;
  throw new SysError('send', e);
}

/**
 * Write all of buf to a socket, waiting up to the deadline.  MSG_NOSIGNAL: a client
 * that went away gives EPIPE, not a signal.
 */
export function sendAll(fd: number, buf: Buffer, deadline: number): void {
  let off = 0;
  while (off < buf.length) {
    const n = sendNow(fd, off === 0 ? buf : buf.subarray(off));
    if (n >= 0) off += n;
    else if (!waitFor(fd, POLLOUT, deadline)) throw new SysError('send', ETIMEDOUT);
  }
}

/**
 * Start a TCP connection to `to`, from `from` when given (an address whose port is
 * ignored: the kernel picks an ephemeral one), else from whatever address the
 * kernel's routing picks.  The socket is close-on-exec and non-blocking, like every
 * fd rexecd opens; finishConnect says how it went once it is writable.
 */
export function startConnect(from: SockAddr | undefined, to: Buffer): number {
  const fd = check('socket', socketC(to.readUInt16LE(0), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    if (from) check('bind', bind(fd, withPort(from, 0), from.raw.length));
    if (connect(fd, to, to.length) === -1) {
      const e = errno();
      if (e !== EINPROGRESS) throw new SysError('connect', e);
    }
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/**
 * shutdown(2).  On a listening socket SHUT_RDWR also wakes a thread blocked in
 * poll() or accept() on it, which close() alone does not do on Linux.
 */
export function shutdown(fd: number, how: number): void {
  check('shutdown', shutdownC(fd, how));
}

/** After a started connect made the socket writable: throws if it failed. */
export function finishConnect(fd: number): void {
  const err = Buffer.alloc(4);
  check('getsockopt', getsockopt(fd, SOL_SOCKET, SO_ERROR, err, [4]));
  if (err.readInt32LE(0) !== 0) throw new SysError('connect', err.readInt32LE(0));
}

/** startConnect and finishConnect in one, giving up at the deadline. */
export function connectFrom(from: SockAddr, to: Buffer, deadline: number): number {
  const fd = startConnect(from, to);
  try {
    if (!waitFor(fd, POLLOUT, deadline)) throw new SysError('connect', ETIMEDOUT);
    finishConnect(fd);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}
