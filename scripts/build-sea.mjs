// Builds rexecd as one Node.js single executable application (SEA):
//
//   OUT/rexecd-<platform>-<arch>          node + the loader + these assets:
//       rexecd-main.js     rexecd's bundle (scripts/bundle.mjs buildMain)
//       rexecd-main.cache  V8's code for all of it, made by this very executable
//       rexec-main.js      the rexec client's bundle, run when the executable is
//                          started under the name `rexec` (a symlink to it)
//   OUT/koffi/<platform>_<arch>/koffi.node   koffi's native module, beside it
//
// The SEA's main is the loader (src/loader.ts) built with REXECD_SEA: it compiles the
// bundle from the asset with the cache, as the node flavour's loader does from files.
// The cache can be made here, once, because the executable is fixed: it is built in
// two passes.  Pass 1 injects the bundles; that executable compiles every function of
// rexecd (`--build-code-cache FILE`); pass 2 injects the bundles and the cache into a
// fresh copy of the same node.  V8 checks a cache against its version, its flags and
// the source; all three are the same in both passes.
//
// koffi's .node file cannot live inside the executable (a native module must be a file
// for dlopen): it sits beside it, where the bundle looks (koffi/<platform>_<arch>/).
//
// Usage: node scripts/build-sea.mjs [--node PATH] [--out DIR] [--strip]   (after `npm run build`)
//   --node  the node binary to turn into the executable (default: the one running this)
//   --out   where the executable and koffi/ go (default: dist)
//   --strip strip node's symbols and debug information first (binutils' strip): 13 MB
//           less for Node 20, nothing that runs changes (the .deb is built so)
// Exit 3 when the node binary cannot become a SEA (no SEA fuse): callers may skip.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildClientMain, buildLoader, buildMain, installKoffiNative } from './bundle.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(ROOT, 'package.json'));
const DIST = join(ROOT, 'dist');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const { values: args } = parseArgs({ options: { node: { type: 'string' }, out: { type: 'string' }, strip: { type: 'boolean' } } });
const givenNode = args.node ?? process.execPath;
const OUT = args.out ?? DIST;
const exe = join(OUT, `rexecd-${process.platform}-${process.arch}`);
const { SEA_ASSETS } = require(join(DIST, 'sea-assets.js'));

if (!existsSync(join(DIST, 'loader.js'))) {
  console.error('build-sea: dist/loader.js is missing; run `npm run build` first');
  process.exit(1);
}
if (!readFileSync(givenNode).includes(FUSE)) {
  console.error(`build-sea: ${givenNode} has no SEA fuse (${FUSE}); it cannot become a single executable`);
  process.exit(3);
}

mkdirSync(OUT, { recursive: true });
// The bundles, the SEA configs, the blobs and the first pass are intermediate: a
// private temporary directory, removed at exit (two builds at once do not collide).
const work = mkdtempSync(join(tmpdir(), 'rexecd-sea-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// The node that becomes the executable (and makes the blobs: the same V8).
let node = givenNode;
if (args.strip) {
  node = join(work, 'node');
  copyFileSync(givenNode, node);
  execFileSync('strip', ['--strip-all', node]);
}

const file = (name, text) => {
  writeFileSync(join(work, name), text);
  return join(work, name);
};
const loader = file('loader.cjs', buildLoader({ sea: true }));
const assets = {
  [SEA_ASSETS.main]: file(SEA_ASSETS.main, buildMain()),
  [SEA_ASSETS.client]: file(SEA_ASSETS.client, buildClientMain()),
};

/** A copy of node with the loader as main and these assets, at `to`. */
async function inject(to, withAssets) {
  const config = file('sea-config.json', JSON.stringify({ main: loader, output: join(work, 'blob'), disableExperimentalSEAWarning: true, useCodeCache: true, assets: withAssets }));
  execFileSync(node, ['--experimental-sea-config', config], { stdio: 'pipe', env: {} });
  copyFileSync(node, to);
  chmodSync(to, 0o755);
  const { inject: postject } = require('postject');
  // postject's ELF reader prints harmless "Can't find string offset" warnings for
  // node's .note sections; they say nothing about the result, which is run below.
  const warn = console.warn;
  console.warn = () => {};
  try {
    await postject(to, 'NODE_SEA_BLOB', readFileSync(join(work, 'blob')), { sentinelFuse: FUSE });
  } finally {
    console.warn = warn;
  }
}

// Pass 1: the bundles; this executable makes the code cache, with a clean
// environment and no flags, as inetd starts rexecd.
const first = join(work, 'pass1');
await inject(first, assets);
const cache = join(work, SEA_ASSETS.cache);
execFileSync(first, ['--build-code-cache', cache], { env: {}, stdio: ['ignore', 'ignore', 'inherit'] });

// Pass 2: the bundles and the cache.
const final = join(work, 'rexecd');
await inject(final, { ...assets, [SEA_ASSETS.cache]: cache });

// koffi's native module beside the executable, then the executable into place at
// once: inetd may be starting it right now.
const nativeDir = dirname(installKoffiNative(OUT));
copyFileSync(final, `${exe}.new`);
renameSync(`${exe}.new`, exe);

// It must start, use its cache and load koffi: without a connection on fd 0 rexecd
// checks fd 0 with getsockopt (native code), prints its hint and exits 2.  Started
// as `rexec`, it is the client.
const run = (argv0, argv) => spawnSync(exe, argv, { argv0, env: {}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const version = run('rexecd', ['--version']);
const hint = run('rexecd', []);
const client = run('rexec', ['--version']);
const problems = [
  version.stdout.includes('code cache: used\n') ? '' : `--version: ${version.stdout}${version.stderr}`,
  hint.status === 2 && hint.stderr.startsWith('rexecd: ') ? '' : `no connection: exit ${hint.status}: ${hint.stderr}`,
  /^rexec \d/.test(client.stdout) ? '' : `as rexec: exit ${client.status}: ${client.stdout}${client.stderr}`,
].filter(Boolean);
if (problems.length > 0) {
  console.error(`build-sea: ${exe} does not work:\n${problems.join('\n')}`);
  process.exit(1);
}
const nodeVersion = execFileSync(givenNode, ['--version'], { env: {}, encoding: 'utf8' }).trim();
console.log(`build-sea: ${exe}: ${version.stdout.split('\n')[0]} on node ${nodeVersion}, code cache used; koffi's native module in ${nativeDir}`);
