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
 * In the single executable (scripts/build-sea.mjs builds this loader with
 * REXECD_SEA) the bundle and its code cache are assets inside the executable,
 * made when it was built: as trusted as the executable, and no file can go stale.
 * The executable also carries the rexec client and runs it when started under the
 * name `rexec` (a symlink), so one node serves both.
 *
 * Plain Node built-ins only, and nothing else loaded: this runs on every connection.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync, writeSync, constants, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { SEA_ASSETS } from './sea-assets';

/** Set by scripts/build-sea.mjs: this loader is a single executable's main. */
declare const REXECD_SEA: boolean | undefined;
const SEA = typeof REXECD_SEA !== 'undefined' && REXECD_SEA;

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

/** What a cache must have been made for: this node, this V8, this bundle (file, or asset). */
function identity(bundle: Stats | string): Identity {
  const id = typeof bundle === 'string' ? `asset:${bundle.length}` : `${bundle.dev}:${bundle.ino}:${bundle.size}:${bundle.mtimeMs}`;
  return { node: process.version, v8: process.versions.v8, arch: process.arch, bundle: id };
}

/** The code after the cache's header, if the header says it was made for `bundle`. */
function cacheBody(data: Buffer, bundle: Stats | string, where: string): { data: Buffer } | { problem: string } {
  const newline = data.indexOf(10, MAGIC.length);
  if (data.toString('latin1', 0, MAGIC.length) !== MAGIC || newline < 0) return { problem: `${where} is not a rexecd code cache` };
  const made = data.toString('utf8', MAGIC.length, newline);
  if (made !== JSON.stringify(identity(bundle))) return { problem: `${where} was made for another bundle or node (${made})` };
  return { data: data.subarray(newline + 1) };
}

/** A cache: its header (what it was made for), then V8's data. */
function cacheFile(script: Script, bundle: Stats | string): Buffer {
  return Buffer.concat([Buffer.from(MAGIC + JSON.stringify(identity(bundle)) + '\n'), script.createCachedData()]);
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
    return cacheBody(data, bundle, CACHE);
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

/** Compile a bundle, with the cache when it can be trusted. */
function compile(source: string, filename: string, cachedData: Buffer | undefined): Script {
  return new Script(source, { filename, cachedData });
}

/** Run a compiled bundle: one function expression taking what CommonJS gives a module. */
function runBundle(script: Script, filename: string): void {
  const main = script.runInThisContext() as (exports: object, req: NodeRequire, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} };
  main.call(module.exports, module.exports, require, module, filename, __dirname);
}

/** Compile and run rexecd, telling it (for --version) whether the cache was used. */
function runWithCache(source: string, filename: string, cache: { data: Buffer } | { problem: string }): void {
  const script = compile(source, filename, 'data' in cache ? cache.data : undefined);
  const state: CacheState = 'problem' in cache ? `ignored: ${cache.problem}` : script.cachedDataRejected ? 'ignored: V8 rejected it' : 'used';
  (globalThis as { rexecdCodeCache?: CacheState }).rexecdCodeCache = state;
  runBundle(script, filename);
}

function run(): void {
  const { source, stat } = readBundle();
  runWithCache(source, MAIN, readCache(stat));
}

type SeaModule = { getAsset(key: string, encoding: string): string; getRawAsset(key: string): ArrayBuffer };
const seaModule = (): SeaModule => require('node:sea') as SeaModule;

/**
 * The single executable: rexecd from its assets, or the client when started as
 * `rexec` (process.argv[1] is the name it was started under; the executable's own
 * path is process.execPath).
 */
function runSea(): void {
  const sea = seaModule();
  if (basename(process.argv[1] ?? '') === 'rexec') {
    const filename = join(__dirname, SEA_ASSETS.client);
    return runBundle(compile(sea.getAsset(SEA_ASSETS.client, 'latin1'), filename, undefined), filename);
  }
  const { source, filename } = theBundle();
  let cache: { data: Buffer } | { problem: string };
  try {
    cache = cacheBody(Buffer.from(sea.getRawAsset(SEA_ASSETS.cache)), source, `asset ${SEA_ASSETS.cache}`);
  } catch (e) {
    cache = { problem: `asset ${SEA_ASSETS.cache}: ${(e as Error).message}` };
  }
  runWithCache(source, filename, cache);
}

/** rexecd's bundle, and what identifies it to a cache: its file, or the asset's text. */
function theBundle(): { source: string; id: Stats | string; filename: string } {
  if (SEA) {
    // esbuild writes ASCII only (it escapes other characters), so latin1 is exact and
    // gives V8 a one-byte string at once.
    const source = seaModule().getAsset(SEA_ASSETS.main, 'latin1');
    return { source, id: source, filename: join(__dirname, SEA_ASSETS.main) };
  }
  const { source, stat } = readBundle();
  return { source, id: stat, filename: MAIN };
}

/**
 * Compile every function of the bundle now (V8's --no-lazy), not as each is first
 * called, and write the code cache.  The flag goes back to its default before the
 * cache is serialised: V8 stamps a cache with a hash of its flags, and rexecd runs
 * with the defaults.  Written to a temporary file, then renamed into place.
 */
function buildCache(to: string): void {
  const { setFlagsFromString } = require('node:v8') as typeof import('node:v8');
  const { source, id, filename } = theBundle();
  setFlagsFromString('--no-lazy');
  const script = compile(source, filename, undefined);
  setFlagsFromString('--lazy');
  const data = cacheFile(script, id);
  const tmp = `${to}.${process.pid}`;
  writeFileSync(tmp, data, { mode: 0o644, flag: 'wx' });
  renameSync(tmp, to);
  process.stdout.write(`rexecd: wrote ${to} (${data.length} bytes, node ${process.version})\n`);
}

/** Under inetd fds 0-2 are the client's connection: nothing but protocol bytes may reach it. */
function onConnection(): boolean {
  try {
    return fstatSync(0).isSocket();
  } catch {
    return false;
  }
}

// The node flavour writes the cache beside the bundle; the single executable's
// build (scripts/build-sea.mjs) names the file, and makes it an asset.
if (process.argv[2] === '--build-code-cache' && process.argv.length === (SEA ? 4 : 3)) {
  buildCache(SEA ? process.argv[3]! : CACHE);
} else {
  try {
    if (SEA) runSea();
    else run();
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
