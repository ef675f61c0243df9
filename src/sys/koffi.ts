/**
 * The one door to native code.  koffi's native module is opened here, on first
 * use, straight from where the build put it, and every C function is declared on
 * its first call: a connection pays only for the libraries and calls it uses.
 *
 * Why not `require('koffi')`: koffi's own loader looks for its native module in
 * eight places, loads it through the CommonJS resolver and wraps deprecated entry
 * points; that costs ~4.7 ms per start (measured: `node -e` loading koffi that way
 * against process.dlopen of the same file).  rexecd knows where its copy is.
 *
 * Assumes 64-bit Linux (x86-64 or arm64): pointers and size_t are 8 bytes, and the
 * struct layouts declared in src/sys/ are those of glibc there.
 */
import { join } from 'node:path';
import type * as Koffi from 'koffi';
import { errnoName } from './errno';

export type KoffiModule = typeof Koffi;
export type LibraryHandle = Koffi.LibraryHandle;
export type TypeObject = Koffi.TypeObject;

/** koffi's version: the native module beside the bundle must be this one. */
const KOFFI_VERSION = '3.3.4';

/** Set by scripts/bundle.mjs: the native module sits beside the bundle. */
declare const REXECD_BUNDLED: boolean | undefined;

function nativeModulePath(): string {
  const triplet = `${process.platform}_${process.arch}`;
  if (typeof REXECD_BUNDLED !== 'undefined' && REXECD_BUNDLED) {
    // dist/rexecd.cjs and dist/koffi/<triplet>/koffi.node; a single executable's
    // __dirname is the executable's directory.
    return join(__dirname, 'koffi', triplet, 'koffi.node');
  }
  // tsc's output (dist/**/*.js) in the checkout: koffi's per-platform npm package.
  return require.resolve(`@koromix/koffi-${process.platform}-${process.arch}/${triplet}/koffi.node`);
}

let native: KoffiModule | undefined;

/** koffi, loaded on first use. */
export function koffi(): KoffiModule {
  if (native) return native;
  const module = { exports: {} as KoffiModule };
  const path = nativeModulePath();
  process.dlopen(module, path);
  if (module.exports.version !== KOFFI_VERSION) {
    throw new Error(`${path} is koffi ${String(module.exports.version)}, not ${KOFFI_VERSION}: a mixed installation`);
  }
  native = module.exports;
  return native;
}

const libraries = new Map<string, LibraryHandle>();

/** A shared library, opened once (null: the C library and everything already loaded). */
export function library(name: string | null): LibraryHandle {
  const key = name ?? '';
  let lib = libraries.get(key);
  if (!lib) {
    lib = koffi().load(name);
    libraries.set(key, lib);
  }
  return lib;
}

/** libc, and whatever else the process has loaded: RTLD_DEFAULT, no dlopen. */
export const libc = (): LibraryHandle => library(null);

/**
 * A C function, declared (parsed, looked up, wrapped: ~15 µs) on its first call.
 * `declaration` is what LibraryHandle.func takes: a C prototype, or name, result
 * type and argument types.
 */
export function cfunc<F extends (...args: never[]) => unknown>(lib: () => LibraryHandle, ...declaration: unknown[]): F {
  let fn: F | undefined;
  const declare = (): F => {
    if (!fn) {
      const handle = lib();
      fn = (handle.func as unknown as (...d: unknown[]) => F).apply(handle, declaration);
    }
    return fn;
  };
  undeclared.push(declare);
  return ((...args: Parameters<F>) => (fn ?? declare())(...args)) as F;
}

/** Declarations not made yet, of every cfunc in the modules loaded so far. */
const undeclared: (() => unknown)[] = [];

/**
 * Declare every C function of the modules loaded so far, now: what a pool worker
 * does while it waits, so that its login pays for none of them.
 */
export function declareAll(): void {
  for (const declare of undeclared.splice(0)) declare();
}

/** errno as the last C call left it. */
export const errno = (): number => koffi().errno();

const strerrorC = cfunc<(errnum: number) => string>(libc, 'const char *strerror(int errnum)');

/** The C library's text for an errno value, e.g. "Connection reset by peer". */
export const strerror = (errnum: number): string => strerrorC(errnum);

/** An errno-carrying error from a system call; its message never holds user data. */
export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${strerror(errno)}`);
    this.name = 'SysError';
  }

  /** The errno's name, e.g. "ECONNRESET". */
  get code(): string {
    return errnoName(this.errno);
  }
}

/** Throw a SysError when a call returned -1 (the C convention for failure). */
export function check<T extends number | bigint>(call: string, result: T): T {
  if (Number(result) === -1) throw new SysError(call, errno());
  return result;
}
