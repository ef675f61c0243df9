/**
 * The errno values rexecd tests for, by name.  These are Linux's generic values
 * (include/uapi/asm-generic/errno-base.h and errno.h), the same on x86-64 and
 * arm64; only alpha, mips, parisc and sparc differ, and rexecd does not run there.
 */
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EBADF = 9;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const ENFILE = 23;
export const EMFILE = 24;
export const EPIPE = 32;
export const ERANGE = 34;
export const ENOTSOCK = 88;
export const ECONNABORTED = 103;
export const ECONNRESET = 104;
export const ENOBUFS = 105;
export const ENOTCONN = 107;
export const ETIMEDOUT = 110;
export const EINPROGRESS = 115;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [ESRCH]: 'ESRCH',
  [EINTR]: 'EINTR',
  [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN',
  [ENOMEM]: 'ENOMEM',
  [EACCES]: 'EACCES',
  [ENFILE]: 'ENFILE',
  [EMFILE]: 'EMFILE',
  [EPIPE]: 'EPIPE',
  [ERANGE]: 'ERANGE',
  [ENOTSOCK]: 'ENOTSOCK',
  [ECONNABORTED]: 'ECONNABORTED',
  [ECONNRESET]: 'ECONNRESET',
  [ENOBUFS]: 'ENOBUFS',
  [ENOTCONN]: 'ENOTCONN',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [EINPROGRESS]: 'EINPROGRESS',
};

/** "ECONNRESET" for 104; "errno N" for a value rexecd never names. */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `errno ${errno}`;
}
