// The tests are TypeScript (test/tsconfig.json): tsc compiles them, with the src/
// they import, into test/.build/js (git-ignored), incrementally -- a run with
// nothing changed only checks timestamps.  scripts/test.mjs runs what this emits;
// bench.mjs and stress.mjs load the harness from it.
//   node scripts/compile-tests.mjs
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where test/x.ts ends up: COMPILED/test/x.js. */
export const COMPILED = join(ROOT, 'test', '.build', 'js');

let compiled = false;

/** Compile (once per process), or exit with tsc's status (its diagnostics are on stderr by then). */
export function compileTests() {
  if (compiled) return;
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'test', 'tsconfig.json')], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('the tests do not compile (tsc -p test/tsconfig.json)');
    process.exit(r.status ?? 1);
  }
  compiled = true;
}

/** The compiled harness module test/harness/<name>.ts, compiling first. */
export function harness(name) {
  compileTests();
  return createRequire(import.meta.url)(join(COMPILED, 'test', 'harness', `${name}.js`));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) compileTests();
