/**
 * Process-level calls that Node lacks or gets wrong for an exec-style server:
 * execve with the exact argv and environment, the signal state the shell inherits,
 * setsid, alarm, sysconf, resource limits (prlimit), whether root can be regained,
 * and _exit.
 */
import { check, cfunc, errno, libc, SysError } from './koffi';
import { EPERM } from './errno';

const execveC = cfunc<(path: Buffer, argv: (Buffer | null)[], envp: (Buffer | null)[]) => number>(libc, 'int execve(const uint8_t *, const uint8_t **, const uint8_t **)');
const setsidC = cfunc<() => number>(libc, 'int setsid(void)');
const signal = cfunc<(sig: number, handler: null) => unknown>(libc, 'void *signal(int, void *)');
const sigprocmask = cfunc<(how: number, set: Buffer, old: null) => number>(libc, 'int sigprocmask(int, const void *, void *)');
const alarmC = cfunc<(seconds: number) => number>(libc, 'unsigned int alarm(unsigned int)');
const sysconf = cfunc<(name: number) => number | bigint>(libc, 'long sysconf(int)');
const _exit = cfunc<(status: number) => never>(libc, 'void _exit(int)');
const write = cfunc<(fd: number, buf: Buffer, len: number) => number>(libc, 'intptr_t write(int, const void *, size_t)');

const cstr = (s: string | Buffer): Buffer => Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from([0])]);

/**
 * Replace this process with `path`.  Returns only on failure, with the errno; the
 * caller reports it (the process is half-way to being the shell by then).
 * Arguments may be Buffers, so a command reaches the shell byte for byte.
 */
export function execve(path: string, argv: readonly (string | Buffer)[], env: readonly string[]): number {
  execveC(cstr(path), [...argv.map(cstr), null], [...env.map(cstr), null]);
  return errno();
}

/** A new session, detached from any terminal.  EPERM means we lead one already. */
export function setsid(): void {
  if (setsidC() === -1 && errno() !== EPERM) throw new SysError('setsid', errno());
}

/**
 * Give the program we exec the signal state of a fresh login: execve keeps ignored
 * dispositions and the mask, and Node ignores SIGPIPE and SIGXFSZ (an inetd may
 * ignore others).  Caught signals are reset by execve itself.
 */
export function resetSignals(): void {
  const ignored = ignoredAtStart ?? ignoredSignals();
  for (let sig = 1; sig <= 64; sig++) {
    if ((ignored >> BigInt(sig - 1)) & 1n) signal(sig, null /* SIG_DFL */);
  }
  const SIG_SETMASK = 2;
  check('sigprocmask', sigprocmask(SIG_SETMASK, Buffer.alloc(128) /* an empty sigset_t */, null));
}

/**
 * struct sigaction (glibc, 64-bit Linux): the handler is the first member, a
 * pointer; SIG_IGN is (void *) 1.  The whole struct is 152 bytes.
 */
const SIGACTION_SIZE = 152;
const SIG_IGN = 1n;
const sigaction = cfunc<(sig: number, act: null, old: Buffer) => number>(libc, 'int sigaction(int, const void *, void *)');

/** The signals this process ignores, as a mask (bit sig-1), asked of the kernel one by one. */
function ignoredSignals(): bigint {
  const old = Buffer.alloc(SIGACTION_SIZE);
  let mask = 0n;
  for (let sig = 1; sig <= 64; sig++) {
    // glibc refuses 32 and 33 (its own); SIGKILL and SIGSTOP are never ignored.
    if (sigaction(sig, null, old) === 0 && old.readBigUInt64LE(0) === SIG_IGN) mask |= 1n << BigInt(sig - 1);
  }
  return mask;
}

let ignoredAtStart: bigint | undefined;

/**
 * Read the ignored signals now, for resetSignals() to use later: what a pool
 * worker does while it waits (nothing changes them afterwards; Node set its own
 * at start-up).
 */
export function rememberIgnoredSignals(): void {
  ignoredAtStart = ignoredSignals();
}

const setuidC = cfunc<(uid: number) => number>(libc, 'int setuid(unsigned int)');
const seteuidC = cfunc<(uid: number) => number>(libc, 'int seteuid(unsigned int)');

/** After dropping privileges: can this process become root again?  (It must not.) */
export function canRegainRoot(): boolean {
  return setuidC(0) === 0 || seteuidC(0) === 0;
}

/** alarm(2): a last-resort timer whose default action ends the process. */
export function alarm(seconds: number): void {
  alarmC(seconds);
}

/** sysconf(_SC_ARG_MAX): the room for exec's arguments and environment. */
export function argMax(): number {
  const _SC_ARG_MAX = 0;
  return Number(sysconf(_SC_ARG_MAX));
}

/** Write to a raw fd, ignoring errors: the last words of a process about to _exit. */
export function writeRaw(fd: number, buf: Buffer): void {
  write(fd, buf, buf.length);
}

/** _exit(2): no exit handlers, no flushing, no waiting for koffi's threads. */
export function exitNow(status: number): never {
  return _exit(status);
}

/** struct rlimit { rlim_t rlim_cur, rlim_max; }: two 64-bit counts. */
const prlimit = cfunc<(pid: number, resource: number, limit: Buffer | null, old: Buffer | null) => number>(libc, 'int prlimit(int, int, const void *, void *)');
const RLIMIT_NOFILE = 7;

const RLIM_INFINITY = 0xffffffffffffffffn;

/**
 * RLIMIT_NOFILE: how many descriptors this process may have open (soft), and the
 * most it may raise that to (hard); Infinity for RLIM_INFINITY.
 */
export function fileLimit(): { soft: number; hard: number } {
  const limit = Buffer.alloc(16);
  check('prlimit(RLIMIT_NOFILE)', prlimit(0, RLIMIT_NOFILE, null, limit));
  const count = (at: number): number => (limit.readBigUInt64LE(at) === RLIM_INFINITY ? Infinity : Number(limit.readBigUInt64LE(at)));
  return { soft: count(0), hard: count(8) };
}

/** Set the soft RLIMIT_NOFILE (up to the hard one, which stays as it is). */
export function setFileLimit(soft: number, hard: number): void {
  const limit = Buffer.alloc(16);
  limit.writeBigUInt64LE(BigInt(soft), 0);
  limit.writeBigUInt64LE(hard === Infinity ? RLIM_INFINITY : BigInt(hard), 8);
  check('prlimit(RLIMIT_NOFILE)', prlimit(0, RLIMIT_NOFILE, limit, null));
}
