// Where the tests find the product, the node that runs it, and the test programs
// written in C (built here with gcc, once, into test/.build).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The checkout: the nearest directory above this module with rexecd's package.json
 * (the tests run compiled, from test/.build/js/test/harness, so not a fixed depth).
 */
function checkoutRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown };
      if (name === 'rexecd') return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json of rexecd above ${__dirname}`);
  }
}

export const ROOT = checkoutRoot();
/** npm run build's output: tsc's, and the bundle. */
export const DIST = join(ROOT, 'dist');
/** What inetd and systemd run in production: the loader of the bundle (scripts/bundle.mjs). */
export const REXECD = join(DIST, 'rexecd.cjs');
/** The files of dist/ that make up the deployed rexecd: the loader, the bundle, its code cache, koffi's native module. */
export const DEPLOYED = ['rexecd.cjs', 'rexecd-main.js', 'rexecd-main.cache', 'koffi'] as const;
/** Our rexec client as npm installs it. */
export const REXEC = join(DIST, 'client', 'rexec.js');
/** The node that runs rexecd and rexec: .ci/run sets REXECD_TEST_NODE to the current LTS. */
export const NODE = process.env.REXECD_TEST_NODE || process.execPath;
/** Scratch space of the tests inside the checkout (git-ignored). */
export const BUILD = join(ROOT, 'test', '.build');

/**
 * test/harness/<source> compiled by gcc into test/.build/<output>, again only when
 * the source is newer.  Returns the output's absolute path.
 */
export function compiledC(source: string, output: string, flags: readonly string[] = []): string {
  const from = join(ROOT, 'test', 'harness', source);
  const to = join(BUILD, output);
  if (!existsSync(to) || statSync(to).mtimeMs < statSync(from).mtimeMs) {
    mkdirSync(BUILD, { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', ...flags, '-o', to, from]);
  }
  return to;
}
