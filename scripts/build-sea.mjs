// Builds rexecd as one Node.js single executable application (SEA):
//
//   dist/rexecd-linux-x64                  node + the bundled rexecd (one file of JS)
//   dist/koffi/linux_x64/koffi.node        koffi's native module, beside it
//
// 1. esbuild bundles dist/rexecd.js (tsc's output; run `npm run build` first) and
//    everything it requires, koffi's JavaScript included, into one CommonJS file.
// 2. `node --experimental-sea-config` turns the bundle into a blob, and postject
//    injects it into a copy of the node binary that runs this script.
// 3. koffi's .node file cannot live inside the executable (a native module must be
//    a file for dlopen).  It is copied beside the executable in the layout koffi
//    documents for bundles: koffi/<platform>_<arch>/koffi.node.  The bundle uses
//    koffi's "indirect" loader (no require() of the per-platform npm package, which a
//    SEA cannot do) and tells koffi, through process.resourcesPath, which it searches
//    for koffi/<triplet>/koffi.node, that this directory is the executable's own.
//
// Usage: node scripts/build-sea.mjs [--node PATH] [--out DIR]
//   --node  the node binary to turn into the executable (default: the one running this)
//   --out   where the executable and koffi/ go (default: dist)
// Exit 3 when the node binary cannot become a SEA (no SEA fuse): callers may skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleOptions, installKoffiNative } from './bundle.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));
const DIST = join(ROOT, 'dist');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const args = process.argv.slice(2);
const nodeAt = args.indexOf('--node');
const node = nodeAt >= 0 ? args[nodeAt + 1] : process.execPath;
const outAt = args.indexOf('--out');
const OUT = outAt >= 0 ? args[outAt + 1] : DIST;
const target = `${process.platform}-${process.arch}`;
const exe = join(OUT, `rexecd-${target}`);

if (!existsSync(join(DIST, 'rexecd.js'))) {
  console.error('build-sea: dist/rexecd.js is missing; run `npm run build` first');
  process.exit(1);
}
if (!readFileSync(node).includes(FUSE)) {
  console.error(`build-sea: ${node} has no SEA fuse (${FUSE}); it cannot become a single executable`);
  process.exit(3);
}

mkdirSync(OUT, { recursive: true });
// The bundle, the SEA config and the blob are intermediate: a private temporary
// directory, removed at exit (two builds at once do not trample each other).
const work = mkdtempSync(join(tmpdir(), 'rexecd-sea-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// 1. One file of JavaScript.
const { buildSync } = require('esbuild');
// The same bundle as dist/rexecd.cjs (scripts/bundle.mjs).
buildSync({ ...bundleOptions, entryPoints: [join(DIST, 'rexecd.js')], outfile: join(work, 'rexecd.cjs') });

// 2. The blob, injected into a copy of node.
const config = join(work, 'sea-config.json');
const blob = join(work, 'rexecd.blob');
writeFileSync(config, JSON.stringify({
  main: join(work, 'rexecd.cjs'),
  output: blob,
  disableExperimentalSEAWarning: true,
  useCodeCache: true,
}));
execFileSync(node, ['--experimental-sea-config', config], { stdio: 'pipe' });
const tmpExe = join(work, 'rexecd');
copyFileSync(node, tmpExe);
chmodSync(tmpExe, 0o755);
const { inject } = require('postject');
// postject's ELF reader prints harmless "Can't find string offset" warnings for
// node's .note sections; they say nothing about the result, which is run below.
const warn = console.warn;
console.warn = () => {};
try {
  await inject(tmpExe, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: FUSE });
} finally {
  console.warn = warn;
}

// 3. koffi's native module beside the executable.
const nativeDir = dirname(installKoffiNative(OUT));
// Into place at once: inetd may be starting the executable right now.
const install = (from, to) => {
  copyFileSync(from, `${to}.new`);
  renameSync(`${to}.new`, to);
};
install(tmpExe, exe);

// The executable must start and load koffi: without a connection on fd 0 rexecd
// checks fd 0 with getsockopt (native code), prints its hint and exits 2.
const check = spawnSync(exe, [], { env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
if (check.status !== 2 || !check.stderr.toString().startsWith('rexecd: ')) {
  console.error(`build-sea: ${exe} does not work (exit ${check.status}):\n${check.stderr}`);
  process.exit(1);
}
console.log(`build-sea: ${exe}, koffi's native module in ${nativeDir}`);
