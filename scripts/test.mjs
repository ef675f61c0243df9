// Compiles the tests (scripts/compile-tests.mjs) and runs the test files under test/
// with Node's built-in runner, one file at a time (the end-to-end files start their
// own inetd and share the machine's 2 cores).
//   node scripts/test.mjs [substring ...]   only files whose path contains one of them
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { COMPILED, ROOT, compileTests } from './compile-tests.mjs';

/** The files under dir (not test/.build) whose names end in suffix. */
function walk(dir, suffix) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name.startsWith('.') ? [] : walk(p, suffix);
    return e.name.endsWith(suffix) ? [p] : [];
  });
}
// A test written in JavaScript would never run: say so rather than skip it.
const javascript = [...walk(join(ROOT, 'test'), '.mjs'), ...walk(join(ROOT, 'test'), '.js')].map((f) => relative(ROOT, f));
if (javascript.length > 0) {
  console.error(`the tests are TypeScript (test/tsconfig.json); these are not, and would not run:\n  ${javascript.join('\n  ')}`);
  process.exit(1);
}
const filters = process.argv.slice(2);
// The sources decide what runs: a compiled file whose source is gone is not run.
const sources = walk(join(ROOT, 'test'), '.test.ts')
  .map((f) => relative(ROOT, f))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (sources.length === 0) {
  console.error('no test files match');
  process.exit(1);
}
compileTests();
const files = sources.map((f) => relative(ROOT, join(COMPILED, f.replace(/\.ts$/, '.js'))));
// --enable-source-maps: stack traces and failures point at the .ts lines.
const r = spawnSync(process.execPath, ['--enable-source-maps', '--test', '--test-concurrency=1', ...files], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status ?? 1);
