/**
 * Sockets, polling and file-descriptor flags: what reading the request, dialling the
 * stderr channel and handing the connection to the shell need.  All synchronous: a
 * per-connection rexecd is one straight line of system calls, like the C servers.
 */
import type { TypeObject } from 'koffi';
import { check, koffi, libc, SysError } from './koffi';

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_TYPE = 3;
const MSG_PEEK = 2;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const F_GETFD = 1;
const F_SETFD = 2;
const F_GETFL = 3;
const F_SETFL = 4;
const FD_CLOEXEC = 1;
const O_NONBLOCK = 0o4000;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
const EINTR = 4;
const EAGAIN = 11;
const EINPROGRESS = 115;
const SOCKADDR_STORAGE = 128;

interface Fns {
  getpeername(fd: number, addr: Buffer, len: number[]): number;
  getsockname(fd: number, addr: Buffer, len: number[]): number;
  getsockopt(fd: number, level: number, name: number, value: Buffer, len: number[]): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  connect(fd: number, addr: Buffer, len: number): number;
  poll(fds: Buffer, n: number, timeout: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  send(fd: number, buf: Buffer, len: number, flags: number): number;
  fcntl(fd: number, cmd: number, ...rest: unknown[]): number;
  dup(fd: number): number;
  dup2(from: number, to: number): number;
  close(fd: number): number;
  close_range(first: number, last: number, flags: number): number;
  inet_ntop(af: number, src: Buffer, dst: Buffer, size: number): unknown;
  inet_pton(af: number, src: string, dst: Buffer): number;
  listen(fd: number, backlog: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  accept4(fd: number, addr: null, len: null, flags: number): number;
  socketpair(domain: number, type: number, protocol: number, sv: Int32Array): number;
  sendmsg(fd: number, msg: Record<string, unknown>, flags: number): number;
  recvmsg(fd: number, msg: Record<string, unknown>, flags: number): number;
}

let msghdrType: TypeObject | undefined;
function msghdr(): TypeObject {
  if (msghdrType) return msghdrType;
  const iovec = koffi.struct('rexecd_iovec', { base: 'void *', len: 'size_t' });
  msghdrType = koffi.struct('rexecd_msghdr', {
    name: 'void *',
    namelen: 'uint32_t',
    iov: koffi.pointer(iovec),
    iovlen: 'size_t',
    control: 'void *',
    controllen: 'size_t',
    flags: 'int',
  });
  return msghdrType;
}

let fns: Fns | undefined;
function f(): Fns {
  if (fns) return fns;
  const lib = libc();
  fns = {
    getpeername: lib.func('int getpeername(int, void *, _Inout_ uint32_t *)'),
    getsockname: lib.func('int getsockname(int, void *, _Inout_ uint32_t *)'),
    getsockopt: lib.func('int getsockopt(int, int, int, void *, _Inout_ uint32_t *)'),
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, const void *, uint32_t)'),
    connect: lib.func('int connect(int, const void *, uint32_t)'),
    poll: lib.func('int poll(void *, unsigned long, int)'),
    recv: lib.func('intptr_t recv(int, void *, size_t, int)'),
    send: lib.func('intptr_t send(int, const void *, size_t, int)'),
    fcntl: lib.func('int fcntl(int, int, ...)'),
    dup: lib.func('int dup(int)'),
    dup2: lib.func('int dup2(int, int)'),
    close: lib.func('int close(int)'),
    close_range: lib.func('int close_range(unsigned int, unsigned int, int)'),
    inet_ntop: lib.func('const char *inet_ntop(int, const void *, char *, uint32_t)'),
    inet_pton: lib.func('int inet_pton(int, const char *, void *)'),
    listen: lib.func('int listen(int, int)'),
    setsockopt: lib.func('int setsockopt(int, int, int, const void *, uint32_t)'),
    accept4: lib.func('int accept4(int, void *, void *, int)'),
    socketpair: lib.func('int socketpair(int, int, int, _Out_ int *sv)'),
    sendmsg: lib.func('sendmsg', 'intptr_t', ['int', koffi.pointer(msghdr()), 'int']),
    recvmsg: lib.func('recvmsg', 'intptr_t', ['int', koffi.inout(koffi.pointer(msghdr())), 'int']),
  };
  return fns;
}

/** A socket address as the kernel gives it, with its family and port decoded. */
export interface SockAddr {
  readonly family: number;
  readonly port: number;
  /** Numeric form; an IPv4-mapped IPv6 address is shown as plain IPv4. */
  readonly address: string;
  /** The raw sockaddr, to connect or bind with. */
  readonly raw: Buffer;
}

function decodeAddr(raw: Buffer): SockAddr {
  const family = raw.readUInt16LE(0);
  const port = raw.readUInt16BE(2);
  const text = Buffer.alloc(64);
  let address: string;
  if (family === AF_INET) {
    f().inet_ntop(AF_INET, raw.subarray(4, 8), text, text.length);
    address = text.toString('latin1', 0, text.indexOf(0));
  } else if (family === AF_INET6) {
    const bytes = raw.subarray(8, 24);
    const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
    if (mapped) {
      f().inet_ntop(AF_INET, bytes.subarray(12, 16), text, text.length);
    } else {
      f().inet_ntop(AF_INET6, bytes, text, text.length);
    }
    address = text.toString('latin1', 0, text.indexOf(0));
  } else {
    address = `(address family ${family})`;
  }
  return { family, port, address, raw };
}

function addressOf(call: 'getpeername' | 'getsockname', fd: number): SockAddr {
  const raw = Buffer.alloc(SOCKADDR_STORAGE);
  const len = [SOCKADDR_STORAGE];
  check(call, f()[call](fd, raw, len));
  return decodeAddr(raw.subarray(0, len[0]));
}

export const peerAddress = (fd: number): SockAddr => addressOf('getpeername', fd);
export const localAddress = (fd: number): SockAddr => addressOf('getsockname', fd);

/** True when fd is a TCP socket over IPv4 or IPv6 (what inetd hands us). */
export function isTcpSocket(fd: number): boolean {
  const SO_DOMAIN = 39;
  const value = Buffer.alloc(4);
  if (f().getsockopt(fd, SOL_SOCKET, SO_TYPE, value, [4]) === -1 || value.readInt32LE(0) !== SOCK_STREAM) return false;
  if (f().getsockopt(fd, SOL_SOCKET, SO_DOMAIN, value, [4]) === -1) return false;
  const domain = value.readInt32LE(0);
  return domain === AF_INET || domain === AF_INET6;
}

/** True when fd is a listening socket (inetd "wait", systemd Accept=no), not a connection. */
export function isListening(fd: number): boolean {
  const SO_ACCEPTCONN = 30;
  const value = Buffer.alloc(4);
  return f().getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, value, [4]) === 0 && value.readInt32LE(0) === 1;
}

/** The same address with another port. */
export function withPort(addr: SockAddr, port: number): Buffer {
  const raw = Buffer.from(addr.raw);
  raw.writeUInt16BE(port, 2);
  return raw;
}

/**
 * Wait until fd is ready for `events` or the deadline (a performance.now() value)
 * passes.  Returns false on timeout.
 */
export function waitFor(fd: number, events: number, deadline: number): boolean {
  const pfd = Buffer.alloc(8);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(events, 4);
  for (;;) {
    const left = Math.ceil(deadline - performance.now());
    if (left <= 0) return false;
    const n = f().poll(pfd, 1, Math.min(left, 2 ** 31 - 1));
    if (n > 0) return true;
    if (n === 0) continue; // poll's rounding: re-check the clock
    const errno = koffi.errno();
    if (errno !== EINTR) throw new SysError('poll', errno);
  }
}

/** recv without blocking; returns 0 at EOF, -1 when nothing is there yet. */
export function recvNow(fd: number, buf: Buffer, length: number, peek: boolean): number {
  const n = f().recv(fd, buf, length, MSG_DONTWAIT | (peek ? MSG_PEEK : 0));
  if (n >= 0) return Number(n);
  const errno = koffi.errno();
  if (errno === EAGAIN || errno === EINTR) return -1;
  throw new SysError('recv', errno);
}

/**
 * Write all of buf to a socket, waiting up to the deadline.  MSG_NOSIGNAL: a client
 * that went away gives EPIPE, not a signal.
 */
export function sendAll(fd: number, buf: Buffer, deadline: number): void {
  let off = 0;
  while (off < buf.length) {
    const rest = buf.subarray(off);
    const n = Number(f().send(fd, rest, rest.length, MSG_DONTWAIT | MSG_NOSIGNAL));
    if (n >= 0) {
      off += n;
      continue;
    }
    const errno = koffi.errno();
    if (errno === EINTR) continue;
    if (errno !== EAGAIN) throw new SysError('send', errno);
    if (!waitFor(fd, POLLOUT, deadline)) throw new SysError('send', 110 /* ETIMEDOUT */);
  }
}

/**
 * Start a TCP connection to `to` from `from` (an address whose port is ignored: the
 * kernel picks an ephemeral one).  The socket is close-on-exec and non-blocking,
 * like every fd rexecd opens; finishConnect says how it went once it is writable.
 */
export function startConnect(from: SockAddr, to: Buffer): number {
  const fd = check('socket', f().socket(to.readUInt16LE(0), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    check('bind', f().bind(fd, withPort(from, 0), from.raw.length));
    if (f().connect(fd, to, to.length) === -1) {
      const errno = koffi.errno();
      if (errno !== EINPROGRESS) throw new SysError('connect', errno);
    }
    return fd;
  } catch (e) {
    f().close(fd);
    throw e;
  }
}

/** After a started connect made the socket writable: throws if it failed. */
export function finishConnect(fd: number): void {
  const err = Buffer.alloc(4);
  check('getsockopt', f().getsockopt(fd, SOL_SOCKET, SO_ERROR, err, [4]));
  if (err.readInt32LE(0) !== 0) throw new SysError('connect', err.readInt32LE(0));
}

/** startConnect and finishConnect in one, giving up at the deadline. */
export function connectFrom(from: SockAddr, to: Buffer, deadline: number): number {
  const fd = startConnect(from, to);
  try {
    if (!waitFor(fd, POLLOUT, deadline)) throw new SysError('connect', 110 /* ETIMEDOUT */);
    finishConnect(fd);
    return fd;
  } catch (e) {
    f().close(fd);
    throw e;
  }
}

export function close(fd: number): void {
  f().close(fd);
}

/** A second fd on the same open socket (close-on-exec is not inherited by dup). */
export function dup(fd: number): number {
  return check('dup', f().dup(fd));
}

export function dup2(from: number, to: number): void {
  if (from !== to) check('dup2', f().dup2(from, to));
}

/** Make fd blocking and inheritable across exec: what a program run by inetd expects. */
export function makeInheritableBlocking(fd: number): void {
  const fl = check('fcntl(F_GETFL)', f().fcntl(fd, F_GETFL));
  if (fl & O_NONBLOCK) check('fcntl(F_SETFL)', f().fcntl(fd, F_SETFL, 'int', fl & ~O_NONBLOCK));
  const fdf = check('fcntl(F_GETFD)', f().fcntl(fd, F_GETFD));
  if (fdf & FD_CLOEXEC) check('fcntl(F_SETFD)', f().fcntl(fd, F_SETFD, 'int', fdf & ~FD_CLOEXEC));
}

/**
 * Mark every fd from `first` up close-on-exec, so that exec leaves the shell with
 * nothing but what it is meant to have, while this process (which may still need
 * to report a failed exec) keeps them until then.
 */
export function closeOnExecFrom(first: number): void {
  const CLOSE_RANGE_CLOEXEC = 4;
  check('close_range', f().close_range(first, 0xffffffff, CLOSE_RANGE_CLOEXEC));
}

/** Mark one fd close-on-exec. */
export function setCloseOnExec(fd: number): void {
  const fdf = check('fcntl(F_GETFD)', f().fcntl(fd, F_GETFD));
  check('fcntl(F_SETFD)', f().fcntl(fd, F_SETFD, 'int', fdf | FD_CLOEXEC));
}

/** A listening TCP socket on an IP literal, non-blocking and close-on-exec. */
export function listenTcp(host: string, port: number, backlog = 511): number {
  const v6 = host.includes(':');
  const raw = Buffer.alloc(v6 ? 28 : 16);
  raw.writeUInt16LE(v6 ? AF_INET6 : AF_INET, 0);
  raw.writeUInt16BE(port, 2);
  if (f().inet_pton(v6 ? AF_INET6 : AF_INET, host, raw.subarray(v6 ? 8 : 4)) !== 1) {
    throw new Error(`"${host}" is not an IPv4 or IPv6 address`);
  }
  const fd = check('socket', f().socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    const SO_REUSEADDR = 2;
    check('setsockopt(SO_REUSEADDR)', f().setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4));
    if (v6) {
      const IPPROTO_IPV6 = 41;
      const IPV6_V6ONLY = 26;
      check('setsockopt(IPV6_V6ONLY)', f().setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4));
    }
    check('bind', f().bind(fd, raw, raw.length));
    check('listen', f().listen(fd, backlog));
    return fd;
  } catch (e) {
    f().close(fd);
    throw e;
  }
}

/** accept4 without blocking: the new fd (non-blocking, close-on-exec), or -1 when none is waiting. */
export function acceptNow(fd: number): number {
  const conn = f().accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (conn >= 0) return conn;
  const errno = koffi.errno();
  // EAGAIN: nothing queued; ECONNABORTED: the client left first; EMFILE and
  // friends: out of fds for now (the listener backs off).
  if (errno === EAGAIN || errno === EINTR || errno === 103 /* ECONNABORTED */) return -1;
  throw new SysError('accept4', errno);
}

/** A connected pair of unix sequenced-packet sockets, close-on-exec. */
export function seqpacketPair(): [number, number] {
  const AF_UNIX = 1;
  const SOCK_SEQPACKET = 5;
  const sv = new Int32Array(2);
  check('socketpair', f().socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
  return [sv[0]!, sv[1]!];
}

const SCM_RIGHTS = 1;
const CMSG_HEADER = 16; // { size_t len; int level; int type; }

/** Send one message with file descriptors attached (SCM_RIGHTS). */
export function sendWithFds(fd: number, data: Buffer, fds: readonly number[]): void {
  let control: Buffer | null = null;
  if (fds.length > 0) {
    control = Buffer.alloc(CMSG_HEADER + 8 * Math.ceil(fds.length / 2));
    control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((d, i) => control!.writeInt32LE(d, CMSG_HEADER + 4 * i));
  }
  const msg = { name: null, namelen: 0, iov: [{ base: data, len: data.length }], iovlen: 1, control, controllen: control?.length ?? 0, flags: 0 };
  const n = Number(f().sendmsg(fd, msg, MSG_NOSIGNAL | MSG_DONTWAIT));
  if (n === -1) throw new SysError('sendmsg', koffi.errno());
  if (n !== data.length) throw new Error(`sendmsg: sent ${n} of ${data.length} bytes`);
}

/**
 * Receive one message and the descriptors that came with it, blocking until one
 * arrives.  Returns undefined at end of file (the sender is gone).
 */
export function recvWithFds(fd: number, max: number): { data: Buffer; fds: number[] } | undefined {
  const MSG_CMSG_CLOEXEC = 0x40000000;
  const data = Buffer.alloc(max);
  const control = Buffer.alloc(CMSG_HEADER + 8 * 4);
  for (;;) {
    const msg = { name: null, namelen: 0, iov: [{ base: data, len: data.length }], iovlen: 1, control, controllen: control.length, flags: 0 };
    const n = Number(f().recvmsg(fd, msg, MSG_CMSG_CLOEXEC));
    if (n === -1) {
      const errno = koffi.errno();
      if (errno === EINTR) continue;
      throw new SysError('recvmsg', errno);
    }
    if (n === 0) return undefined;
    const fds: number[] = [];
    const controllen = Number(msg.controllen);
    if (controllen >= CMSG_HEADER && control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) {
      const count = (Number(control.readBigUInt64LE(0)) - CMSG_HEADER) / 4;
      for (let i = 0; i < count; i++) fds.push(control.readInt32LE(CMSG_HEADER + 4 * i));
    }
    return { data: data.subarray(0, n), fds };
  }
}

export interface PollRequest {
  readonly fd: number;
  readonly events: number;
}

/**
 * poll(2) on a koffi worker thread, so the event loop stays free: calls back with
 * the revents of each request (same order), or an empty list on timeout.
 */
export function pollAsync(requests: readonly PollRequest[], timeoutMs: number, done: (revents: number[] | Error) => void): void {
  const pfds = Buffer.alloc(8 * requests.length);
  requests.forEach((r, i) => {
    pfds.writeInt32LE(r.fd, 8 * i);
    pfds.writeInt16LE(r.events, 8 * i + 4);
  });
  (f().poll as unknown as { async(b: Buffer, n: number, t: number, cb: (err: unknown, n: number) => void): void }).async(pfds, requests.length, timeoutMs, (err, n) => {
    if (err) return done(err as Error);
    if (n < 0) return done([]); // EINTR: report nothing ready; the caller polls again
    done(requests.map((_, i) => pfds.readInt16LE(8 * i + 6)));
  });
}
