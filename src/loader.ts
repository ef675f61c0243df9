/**
 * What inetd, systemd and the pool start: `node rexecd.cjs`.  It compiles rexecd
 * (rexecd-main.js beside it, the bundle of src/rexecd.ts) and runs it.  Node starts
 * once per connection, and compiling the bundle's functions as they are first
 * called is a third of what rexecd adds to Node's own start-up; so the loader
 * gives V8 a code cache of every function, compiled ahead (rexecd-main.cache,
 * made by `node rexecd.cjs --build-code-cache` at build or install time).
 *
 * A code cache is code: V8 runs the bytecode in it and checks only its own version,
 * its flags and the source's length.  So the cache is used only when it can be
 * trusted as far as the bundle itself: a regular file owned by root (or by whoever
 * runs rexecd), in a directory owned likewise, neither writable by group or others,
 * and made for this very bundle file (its device, inode, size and mtime), this node
 * and this V8.  Anything else — missing, stale, foreign, unreadable, rejected by V8
 * — and the bundle is compiled from source, as without a cache.  `rexecd --version`
 * says which happened.
 *
 * Plain Node built-ins only, and nothing else loaded: this runs on every connection.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync, constants, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';

const MAIN = join(__dirname, 'rexecd-main.js');
const CACHE = join(__dirname, 'rexecd-main.cache');
const MAGIC = 'rexecd-code-cache-1\n';

/** Why the cache was not used, or 'used'; rexecd --version reports it. */
export type CacheState = 'used' | `ignored: ${string}`;

interface Identity {
  readonly node: string;
  readonly v8: string;
  readonly arch: string;
  readonly bundle: string;
}

/** What a cache must have been made for: this node, this V8, this bundle file. */
function identity(bundle: Stats): Identity {
  return { node: process.version, v8: process.versions.v8, arch: process.arch, bundle: `${bundle.dev}:${bundle.ino}:${bundle.size}:${bundle.mtimeMs}` };
}

/** May root trust this file or directory as much as the code it sits beside? */
function untrusted(st: Stats, what: string): string | undefined {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== me) return `${what} is owned by uid ${st.uid}`;
  if (st.mode & 0o022) return `${what} is writable by group or others (mode ${(st.mode & 0o777).toString(8)})`;
  return undefined;
}

function readCache(bundle: Stats): { data: Buffer } | { problem: string } {
  let fd: number;
  try {
    fd = openSync(CACHE, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    return { problem: `${CACHE}: ${(e as NodeJS.ErrnoException).code}` };
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return { problem: `${CACHE} is not a regular file` };
    const problem = untrusted(st, CACHE) ?? untrusted(statSync(dirname(CACHE)), dirname(CACHE));
    if (problem) return { problem };
    const data = Buffer.alloc(st.size);
    let at = 0;
    while (at < st.size) {
      const n = readSync(fd, data, at, st.size - at, at);
      if (n === 0) break;
      at += n;
    }
    const newline = data.indexOf(10, MAGIC.length);
    if (data.toString('latin1', 0, MAGIC.length) !== MAGIC || newline < 0) return { problem: `${CACHE} is not a rexecd code cache` };
    const made = data.toString('utf8', MAGIC.length, newline);
    if (made !== JSON.stringify(identity(bundle))) return { problem: `${CACHE} was made for another bundle or node (${made})` };
    return { data: data.subarray(newline + 1) };
  } catch (e) {
    return { problem: `${CACHE}: ${(e as Error).message}` };
  } finally {
    closeSync(fd);
  }
}

/** The bundle's source and file identity. */
function readBundle(): { source: string; stat: Stats } {
  const fd = openSync(MAIN, 'r');
  try {
    return { stat: fstatSync(fd), source: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** Compile the bundle, with the cache when it can be trusted. */
function compile(source: string, cachedData: Buffer | undefined): Script {
  return new Script(source, { filename: MAIN, cachedData });
}

function run(): void {
  const { source, stat } = readBundle();
  const cache = readCache(stat);
  const script = compile(source, 'data' in cache ? cache.data : undefined);
  const state: CacheState = 'problem' in cache ? `ignored: ${cache.problem}` : script.cachedDataRejected ? 'ignored: V8 rejected it' : 'used';
  (globalThis as { rexecdCodeCache?: CacheState }).rexecdCodeCache = state;
  const main = script.runInThisContext() as (exports: object, req: NodeRequire, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} };
  main.call(module.exports, module.exports, require, module, MAIN, __dirname);
}

/**
 * Compile every function of the bundle now (V8's --no-lazy), not as each is first
 * called, and write the code cache.  The flag goes back to its default before the
 * cache is serialised: V8 stamps a cache with a hash of its flags, and rexecd runs
 * with the defaults.  Written to a temporary file, then renamed into place.
 */
function buildCache(): void {
  const { setFlagsFromString } = require('node:v8') as typeof import('node:v8');
  const { source, stat } = readBundle();
  setFlagsFromString('--no-lazy');
  const script = compile(source, undefined);
  setFlagsFromString('--lazy');
  const data = Buffer.concat([Buffer.from(MAGIC + JSON.stringify(identity(stat)) + '\n'), script.createCachedData()]);
  const tmp = `${CACHE}.${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644, flag: 'wx' });
  renameSync(tmp, CACHE);
  process.stdout.write(`rexecd: wrote ${CACHE} (${data.length} bytes, node ${process.version})\n`);
}

/** Under inetd fds 0-2 are the client's connection: nothing but protocol bytes may reach it. */
function onConnection(): boolean {
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

if (process.argv[2] === '--build-code-cache' && process.argv.length === 3) {
  buildCache();
} else {
  try {
    run();
  } catch (e) {
    // rexecd's own guard (src/guard.ts) answers and logs once it is loaded; before
    // that (a broken installation: the bundle missing or unreadable) only this can.
    if (process.listenerCount('uncaughtException') > 0 || !onConnection()) throw e;
    try {
      writeSync(0, '\x01Try again.\n');
    } catch {
      // The client is gone.
    }
    process.exit(1);
  }
}
