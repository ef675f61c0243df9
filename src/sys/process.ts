/**
 * Process-level calls that Node lacks or gets wrong for an exec-style server:
 * execve with the exact argv and environment, the signal state the shell inherits,
 * setsid, alarm, sysconf and _exit.
 */
import { readFileSync } from 'node:fs';
import { check, koffi, libc, SysError } from './koffi';

interface Fns {
  execve(path: Buffer, argv: (Buffer | null)[], envp: (Buffer | null)[]): number;
  setsid(): number;
  signal(sig: number, handler: null): unknown;
  sigprocmask(how: number, set: Buffer, old: null): number;
  alarm(seconds: number): number;
  sysconf(name: number): number | bigint;
  _exit(status: number): void;
  write(fd: number, buf: Buffer, len: number): number;
}

let fns: Fns | undefined;
function f(): Fns {
  if (fns) return fns;
  const lib = libc();
  fns = {
    execve: lib.func('int execve(const uint8_t *, const uint8_t **, const uint8_t **)'),
    setsid: lib.func('int setsid(void)'),
    signal: lib.func('void *signal(int, void *)'),
    sigprocmask: lib.func('int sigprocmask(int, const void *, void *)'),
    alarm: lib.func('unsigned int alarm(unsigned int)'),
    sysconf: lib.func('long sysconf(int)'),
    _exit: lib.func('void _exit(int)'),
    write: lib.func('intptr_t write(int, const void *, size_t)'),
  };
  return fns;
}

const cstr = (s: string | Buffer): Buffer => Buffer.concat([typeof s === 'string' ? Buffer.from(s) : s, Buffer.from([0])]);

/**
 * Replace this process with `path`.  Returns only on failure, with the errno; the
 * caller reports it (the process is half-way to being the shell by then).
 * Arguments may be Buffers, so a command reaches the shell byte for byte.
 */
export function execve(path: string, argv: readonly (string | Buffer)[], env: readonly string[]): number {
  f().execve(cstr(path), [...argv.map(cstr), null], [...env.map(cstr), null]);
  return koffi.errno();
}

/** A new session, detached from any terminal.  EPERM means we lead one already. */
export function setsid(): void {
  if (f().setsid() === -1 && koffi.errno() !== 1 /* EPERM */) throw new SysError('setsid', koffi.errno());
}

/**
 * Give the program we exec the signal state of a fresh login: execve keeps ignored
 * dispositions and the mask, and Node ignores SIGPIPE and SIGXFSZ (an inetd may
 * ignore others).  Caught signals are reset by execve itself.
 */
export function resetSignals(): void {
  const status = readFileSync('/proc/self/status', 'latin1');
  const ignored = BigInt('0x' + (/^SigIgn:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'));
  for (let sig = 1; sig <= 64; sig++) {
    if ((ignored >> BigInt(sig - 1)) & 1n) f().signal(sig, null /* SIG_DFL */);
  }
  const SIG_SETMASK = 2;
  check('sigprocmask', f().sigprocmask(SIG_SETMASK, Buffer.alloc(128), null));
}

/** alarm(2): a last-resort timer whose default action ends the process. */
export function alarm(seconds: number): void {
  f().alarm(seconds);
}

export function argMax(): number {
  const _SC_ARG_MAX = 0;
  return Number(f().sysconf(_SC_ARG_MAX));
}

/** Write to a raw fd, ignoring errors: the last words of a process about to _exit. */
export function writeRaw(fd: number, buf: Buffer): void {
  f().write(fd, buf, buf.length);
}

export function exitNow(status: number): never {
  f()._exit(status);
  throw new Error('unreachable');
}
