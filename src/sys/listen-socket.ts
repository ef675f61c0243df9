/**
 * What the listener needs beyond one connection's calls: listening and accepting
 * without blocking, the unix socket pair to a pre-started worker and the messages
 * that carry descriptors over it (SCM_RIGHTS), and poll(2) off the event loop.
 *
 * Layouts (Linux, 64-bit): struct msghdr and struct iovec as MSGHDR and IOVEC
 * below; struct cmsghdr is { size_t cmsg_len; int cmsg_level; int cmsg_type; }
 * (16 bytes), its data 8-byte aligned, as CMSG_LEN/CMSG_SPACE compute it.
 */
import type { LibraryHandle } from './koffi';
import { check, cfunc, errno, koffi, libc, SysError } from './koffi';
import { close } from './fd';
import { EAGAIN, ECONNABORTED, EINTR, EMFILE, ENFILE, ENOBUFS, ENOMEM } from './errno';
import { AF_INET6, MSG_DONTWAIT, MSG_NOSIGNAL, poll, POLLFD_SIZE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM, sockaddrOf, SOL_SOCKET } from './socket';

const SO_REUSEADDR = 2;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const CMSG_HEADER = 16;
const cmsgAlign = (n: number): number => (n + 7) & ~7;
/** CMSG_SPACE: the room one control message carrying `bytes` of data takes. */
const cmsgSpace = (bytes: number): number => CMSG_HEADER + cmsgAlign(bytes);
/** The most descriptors one handoff carries: the connection and its stderr channel. */
const MAX_FDS = 2;

const setsockopt = cfunc<(fd: number, level: number, name: number, value: Buffer, len: number) => number>(libc, 'int setsockopt(int, int, int, const void *, uint32_t)');
const socketC = cfunc<(domain: number, type: number, protocol: number) => number>(libc, 'int socket(int, int, int)');
const bind = cfunc<(fd: number, addr: Buffer, len: number) => number>(libc, 'int bind(int, const void *, uint32_t)');
const listenC = cfunc<(fd: number, backlog: number) => number>(libc, 'int listen(int, int)');
const accept4 = cfunc<(fd: number, addr: null, len: null, flags: number) => number>(libc, 'int accept4(int, void *, void *, int)');
const socketpair = cfunc<(domain: number, type: number, protocol: number, sv: Int32Array) => number>(libc, 'int socketpair(int, int, int, _Out_ int *sv)');

/**
 * struct msghdr and struct iovec (<sys/socket.h>, 64-bit Linux), laid out by hand:
 * koffi would copy a struct argument and the 139 KB buffer it points to in and out
 * of C memory on every call (measured ~0.3 ms in a worker's handoff); here the
 * kernel reads and writes the Buffers themselves, by their addresses.
 */
const MSGHDR = { size: 56, name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48 } as const;
const IOVEC = { size: 16, base: 0, len: 8 } as const;

/** A msghdr for one buffer and a control buffer; the Buffers must outlive the call. */
function messageHeader(data: Buffer, control: Buffer | null): Buffer {
  const k = koffi();
  const iov = Buffer.alloc(IOVEC.size);
  iov.writeBigUInt64LE(k.address(data), IOVEC.base);
  iov.writeBigUInt64LE(BigInt(data.length), IOVEC.len);
  const msg = Buffer.alloc(MSGHDR.size);
  msg.writeBigUInt64LE(k.address(iov), MSGHDR.iov);
  msg.writeBigUInt64LE(1n, MSGHDR.iovlen);
  if (control) {
    msg.writeBigUInt64LE(k.address(control), MSGHDR.control);
    msg.writeBigUInt64LE(BigInt(control.length), MSGHDR.controllen);
  }
  // The iovec is referenced from msg only by address: keep it alive with it.
  return Object.assign(msg, { iovec: iov });
}

const sendmsg = cfunc<(fd: number, msg: Buffer, flags: number) => number | bigint>(libc, 'intptr_t sendmsg(int, const void *, int)');
const recvmsg = cfunc<(fd: number, msg: Buffer, flags: number) => number | bigint>(libc, 'intptr_t recvmsg(int, void *, int)');

interface AsyncPoll {
  async(fds: Buffer, n: number, timeout: number, done: (err: unknown, n: number) => void): void;
}
let pollForAsync: AsyncPoll | undefined;
/** poll(2) as koffi declares it, with its .async (cfunc's wrapper has none). */
function asyncPoll(): AsyncPoll {
  pollForAsync ??= (libc() as LibraryHandle).func('int poll(void *, unsigned long, int)') as unknown as AsyncPoll;
  return pollForAsync;
}

/** A listening TCP socket on an IP literal, non-blocking and close-on-exec. */
export function listenTcp(host: string, port: number, backlog = 511): number {
  return listenOn(sockaddrOf(host, port), backlog);
}

/**
 * A listening TCP socket on a sockaddr (port 0: an ephemeral one), non-blocking and
 * close-on-exec; an IPv6 one takes IPv6 connections only.
 */
export function listenOn(addr: Buffer, backlog: number): number {
  const family = addr.readUInt16LE(0);
  const fd = check('socket', socketC(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    const one = Buffer.alloc(4);
    one.writeInt32LE(1, 0);
    check('setsockopt(SO_REUSEADDR)', setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4));
    if (family === AF_INET6) check('setsockopt(IPV6_V6ONLY)', setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4));
    check('bind', bind(fd, addr, addr.length));
    check('listen', listenC(fd, backlog));
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

export type Accepted =
  /** A new connection, non-blocking and close-on-exec. */
  | { readonly kind: 'connection'; readonly fd: number }
  /** Nothing is waiting (or a client left before we took it). */
  | { readonly kind: 'none' }
  /** Out of descriptors or memory for now: the connection waits in the backlog. */
  | { readonly kind: 'exhausted'; readonly error: SysError };

/** accept4 without blocking. */
export function acceptNow(fd: number): Accepted {
  const conn = accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (conn >= 0) return { kind: 'connection', fd: conn };
  const e = errno();
  if (e === EAGAIN || e === EINTR || e === ECONNABORTED) return { kind: 'none' };
  if (e === EMFILE || e === ENFILE || e === ENOMEM || e === ENOBUFS) return { kind: 'exhausted', error: new SysError('accept4', e) };
  throw new SysError('accept4', e);
}

/** A connected pair of unix sequenced-packet sockets, close-on-exec. */
export function seqpacketPair(): [number, number] {
  const sv = new Int32Array(2);
  check('socketpair', socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
  return [sv[0]!, sv[1]!];
}

/** Send one message with file descriptors attached (SCM_RIGHTS), without blocking. */
export function sendWithFds(fd: number, data: Buffer, fds: readonly number[]): void {
  let control: Buffer | null = null;
  if (fds.length > 0) {
    control = Buffer.alloc(cmsgSpace(4 * fds.length));
    control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0); // CMSG_LEN
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((d, i) => control!.writeInt32LE(d, CMSG_HEADER + 4 * i));
  }
  const n = Number(sendmsg(fd, messageHeader(data, control), MSG_NOSIGNAL | MSG_DONTWAIT));
  if (n === -1) throw new SysError('sendmsg', errno());
  if (n !== data.length) throw new Error(`sendmsg: sent ${n} of ${data.length} bytes`);
}

/**
 * Receive one message and the descriptors that came with it (close-on-exec),
 * blocking until one arrives.  Returns undefined at end of file (the sender is gone).
 */
export function recvWithFds(fd: number, max: number): { data: Buffer; fds: number[] } | undefined {
  const data = Buffer.alloc(max);
  const control = Buffer.alloc(cmsgSpace(4 * MAX_FDS));
  for (;;) {
    const msg = messageHeader(data, control);
    const n = Number(recvmsg(fd, msg, MSG_CMSG_CLOEXEC));
    if (n === -1) {
      const e = errno();
      if (e === EINTR) continue;
      throw new SysError('recvmsg', e);
    }
    if (n === 0) return undefined;
    const fds: number[] = [];
    if (Number(msg.readBigUInt64LE(MSGHDR.controllen)) >= CMSG_HEADER && control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) {
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

function pollfds(requests: readonly PollRequest[]): Buffer {
  const pfds = Buffer.alloc(POLLFD_SIZE * requests.length);
  requests.forEach((r, i) => {
    pfds.writeInt32LE(r.fd, POLLFD_SIZE * i);
    pfds.writeInt16LE(r.events, POLLFD_SIZE * i + 4);
  });
  return pfds;
}

const revents = (pfds: Buffer, n: number): number[] => Array.from({ length: n }, (_, i) => pfds.readInt16LE(POLLFD_SIZE * i + 6));

/** poll(2) without waiting: the revents of each request (same order), all 0 when none is ready. */
export function pollNow(requests: readonly PollRequest[]): number[] {
  const pfds = pollfds(requests);
  const n = poll(pfds, requests.length, 0);
  if (n < 0 && errno() !== EINTR) throw new SysError('poll', errno());
  return n > 0 ? revents(pfds, requests.length) : requests.map(() => 0);
}

/**
 * poll(2) on a koffi worker thread, so the event loop stays free: calls back with
 * the revents of each request (same order), all 0 on timeout or EINTR.
 */
export function pollAsync(requests: readonly PollRequest[], timeoutMs: number, done: (revents: number[] | Error) => void): void {
  const pfds = pollfds(requests);
  asyncPoll().async(pfds, requests.length, timeoutMs, (err, n) => {
    if (err) return done(err as Error);
    done(n > 0 ? revents(pfds, requests.length) : requests.map(() => 0));
  });
}
