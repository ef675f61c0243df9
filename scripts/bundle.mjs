// Bundles rexecd into one file of JavaScript, dist/rexecd.cjs, the program that inetd,
// systemd and `npm start` run, with koffi's native module beside it in the layout
// koffi documents for bundles (dist/koffi/<platform>_<arch>/koffi.node).
//
// Why: rexecd starts once per connection.  Loading ~25 modules of ours and koffi's
// JavaScript from node_modules costs ~15 ms of CPU per start on this machine (measured:
// `node dist/rexecd.js --version` 68 ms, this bundle 53 ms, `node -e 0` 33 ms, CPU
// time under load); one file loads in one read and one compile.  koffi is bundled
// through its "indirect" entry, which finds the native module under
// process.resourcesPath: the banner points that at the bundle's own directory.
//
// scripts/build-sea.mjs uses the same options for the single executable.
//   node scripts/bundle.mjs            (run by `npm run build`, after tsc)
import { chmodSync, copyFileSync, mkdirSync, renameSync } from 'node:fs';
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
  alias: { koffi: 'koffi/indirect' },
  // esbuild keeps the entry's #! line first; this goes right after it.
  banner: {
    js: [
      '// rexecd, bundled (scripts/bundle.mjs).  koffi looks for its native module in',
      '// <process.resourcesPath>/koffi/<triplet>/koffi.node: point it next to us.',
      'if (process.resourcesPath === undefined) process.resourcesPath = __dirname;',
    ].join('\n'),
  },
};

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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = join(ROOT, 'dist', 'rexecd.cjs');
  require('esbuild').buildSync({ ...bundleOptions, entryPoints: [join(ROOT, 'dist', 'rexecd.js')], outfile: `${out}.new` });
  chmodSync(`${out}.new`, 0o755);
  renameSync(`${out}.new`, out);
  installKoffiNative(join(ROOT, 'dist'));
}
