/**
 * The one door to native code.  Every C library rexecd uses is opened here, lazily,
 * so a connection pays only for the libraries it needs (libpam only for PAM,
 * libcrypt only for the shadow method).
 */
import koffi, { type LibraryHandle } from 'koffi';

export { koffi };

/** An errno-carrying error from a system call; its message never holds user data. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${strerror(errno)}`);
    this.name = 'SysError';
  }
  get code(): string {
    return errnoName(this.errno);
  }
}

let names: Map<number, string> | undefined;
export function errnoName(errno: number): string {
  names ??= new Map(Object.entries(koffi.os.errno).map(([k, v]) => [v, k]));
  return names.get(errno) ?? `errno ${errno}`;
}

let strerrorFn: ((errno: number) => string) | undefined;
export function strerror(errno: number): string {
  strerrorFn ??= libc().func('const char *strerror(int errnum)') as (errno: number) => string;
  return strerrorFn(errno);
}

let libcHandle: LibraryHandle | undefined;
export function libc(): LibraryHandle {
  libcHandle ??= koffi.load('libc.so.6');
  return libcHandle;
}

/** Throw a SysError when a call returned -1 (the C convention for failure). */
export function check<T extends number | bigint>(call: string, result: T): T {
  if (Number(result) === -1) throw new SysError(call, koffi.errno());
  return result;
}
