// Bundles rexecd into what inetd, systemd and `npm start` run:
//
//   dist/rexecd.cjs          the loader (src/loader.ts): compiles and runs the bundle
//   dist/rexecd-main.js      all of rexecd (src/rexecd.ts and what it imports) in one
//                            file, as one function expression the loader compiles
//   dist/rexecd-main.cache   V8's code for every function of the bundle, compiled
//                            ahead (`node dist/rexecd.cjs --build-code-cache`)
//   dist/koffi/<platform>_<arch>/koffi.node   koffi's native module
//   dist/rexec.cjs           the rexec client (src/client/rexec.ts) in one file, yargs
//                            included: it needs no node_modules, only koffi/ beside it
//
// Why: rexecd starts once per connection.  Loading ~25 modules of ours and koffi's
// JavaScript from node_modules cost ~15 ms of CPU per start on this machine (measured:
// `node dist/rexecd.js --version` 68 ms, one bundle 53 ms, `node -e 0` 33 ms, CPU time
// under load); one file loads in one read.  Compiling its functions lazily, as each
// is first called, cost ~3.5 ms more per connection than a code cache of all of them
// (median time from Node's bootstrap to the exec of the shell: 16.3 ms without, 12.8 ms
// with, 10 logins each under inetd).  None of koffi's JavaScript is bundled:
// src/sys/koffi.ts opens koffi's native module itself (REXECD_BUNDLED says where).
//
// scripts/build-sea.mjs uses the same options for the single executable.
//   node scripts/bundle.mjs            (run by `npm run build`, after tsc)
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));

export const bundleOptions = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  logLevel: 'warning',
  define: { REXECD_BUNDLED: 'true' },
  // Only types come from 'koffi'; a value import of it would be a mistake.
  external: ['koffi'],
};

/**
 * The bundle as the loader compiles it: one function expression taking what
 * CommonJS gives a module, with the source of src/rexecd.ts and all it imports.
 */
export function buildMain() {
  const { outputFiles } = require('esbuild').buildSync({ ...bundleOptions, entryPoints: [join(ROOT, 'dist', 'rexecd.js')], write: false });
  const code = outputFiles[0].text.replace(/^#!.*\n/, '');
  return `(function (exports, require, module, __filename, __dirname) {\n${code}\n})`;
}

/**
 * The loader, as the executable file inetd names.  sea: the single executable's
 * main (scripts/build-sea.mjs), which reads the bundle from its assets.
 */
export function buildLoader({ sea = false } = {}) {
  const { outputFiles } = require('esbuild').buildSync({
    ...bundleOptions,
    define: { ...bundleOptions.define, REXECD_SEA: String(sea) },
    entryPoints: [join(ROOT, 'dist', 'loader.js')],
    write: false,
    banner: { js: '#!/usr/bin/env node' },
  });
  return outputFiles[0].text;
}

/**
 * The rexec client in one CommonJS file, without its #! line.  yargs 18 is ESM and
 * reads import.meta.url (to find its locale files, which the bundle does without:
 * messages in English); in CommonJS that is the bundle's own file URL.
 */
function clientCode() {
  const { outputFiles } = require('esbuild').buildSync({
    ...bundleOptions,
    entryPoints: [join(ROOT, 'dist', 'client', 'rexec.js')],
    write: false,
    define: { ...bundleOptions.define, 'import.meta.url': '__rexecBundleUrl' },
    banner: { js: 'var __rexecBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
  });
  return outputFiles[0].text.replace(/^#!.*\n/, '');
}

/** The client as a program file: `node rexec.cjs` or, executable, `rexec.cjs`. */
export const buildClient = () => `#!/usr/bin/env node\n${clientCode()}`;

/** The client as the single executable's loader runs it (one function expression). */
export const buildClientMain = () => `(function (exports, require, module, __filename, __dirname) {\n${clientCode()}\n})`;

/**
 * The npm packages whose code the bundles carry (rexecd's and the client's), as
 * their directories under node_modules: a binary package must carry their licenses.
 * koffi's JavaScript is not bundled; its native module is shipped, so it is listed.
 */
export function bundledPackages() {
  const { metafile } = require('esbuild').buildSync({
    ...bundleOptions,
    define: { ...bundleOptions.define, 'import.meta.url': '__rexecBundleUrl' },
    entryPoints: [join(ROOT, 'dist', 'rexecd.js'), join(ROOT, 'dist', 'client', 'rexec.js')],
    outdir: join(ROOT, 'dist', 'metafile-unused'),
    absWorkingDir: ROOT,
    write: false,
    metafile: true,
  });
  const dirs = new Set([join(ROOT, 'node_modules', 'koffi')]);
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*\bnode_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(join(ROOT, m[1]));
  }
  return [...dirs].sort();
}

/** Copy koffi's native module for this platform into <dir>/koffi/<triplet>/, atomically. */
export function installKoffiNative(dir) {
  const target = `${process.platform}-${process.arch}`;
  const triplet = `${process.platform}_${process.arch}`;
  const from = join(dirname(require.resolve(`@koromix/koffi-${target}/package.json`)), triplet, 'koffi.node');
  const to = join(dir, 'koffi', triplet, 'koffi.node');
  mkdirSync(dirname(to), { recursive: true });
  // Into place at once: a running rexecd maps this file and must never see it rewritten.
  copyFileSync(from, `${to}.new`);
  renameSync(`${to}.new`, to);
  return to;
}

/** Write `text` to `path` atomically (a running inetd may start it at any moment). */
function writeAtomically(path, text, mode) {
  writeFileSync(`${path}.new`, text, { mode });
  chmodSync(`${path}.new`, mode);
  renameSync(`${path}.new`, path);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = join(ROOT, 'dist');
  writeAtomically(join(dist, 'rexecd-main.js'), buildMain(), 0o644);
  writeAtomically(join(dist, 'rexecd.cjs'), buildLoader(), 0o755);
  writeAtomically(join(dist, 'rexec.cjs'), buildClient(), 0o755);
  installKoffiNative(dist);
  // The code cache, made by the node that builds (and that the tests and npm start
  // run): with a clean environment, as inetd starts rexecd.
  execFileSync(process.execPath, [join(dist, 'rexecd.cjs'), '--build-code-cache'], { env: {}, stdio: ['ignore', 'ignore', 'inherit'] });
}
