// The loader's code cache (src/loader.ts): used when it can be trusted, ignored —
// never run — when it cannot.  A V8 code cache is code, and V8 checks only its own
// version, its flags and the source's LENGTH: the first test shows that a planted
// cache for another program of the same length runs in place of rexecd when nothing
// else is checked.  Then each reason to distrust one: a foreign owner, group or
// other write permission on the file or its directory, a cache made for another
// bundle file or another node.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEPLOYED, DIST, NODE } from '../harness/paths';

const NOBODY = 65534;
let dir: string;
let marker: string;
const cache = () => join(dir, 'rexecd-main.cache');
const bundle = () => join(dir, 'rexecd-main.js');

/** rexecd --version from the copy: its stdout, and whether the planted code ran. */
function version(): { out: string; status: number | null; planted: boolean } {
  const r = spawnSync(NODE, [join(dir, 'rexecd.cjs'), '--version'], { env: {}, encoding: 'utf8' });
  const planted = existsSync(marker);
  rmSync(marker, { force: true });
  return { out: r.stdout, status: r.status, planted };
}

/** The cache header as the loader writes it, for the bundle file as it is now. */
function header(nodeVersion: string = execFileSync(NODE, ['-p', 'process.version'], { env: {} }).toString().trim()) {
  const v8 = execFileSync(NODE, ['-p', 'process.versions.v8'], { env: {} }).toString().trim();
  const st = statSync(bundle());
  return `rexecd-code-cache-1\n${JSON.stringify({ node: nodeVersion, v8, arch: process.arch, bundle: `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}` })}\n`;
}

/**
 * A code cache, made by the node rexecd runs on, for a program of exactly the
 * bundle's length that writes `marker` — every function compiled ahead, as the
 * loader's own caches are — under a header that matches the bundle.
 */
function plantCache(nodeVersion?: string): void {
  const length = readFileSync(bundle(), 'utf8').length;
  const body = `(function (exports, require) { require('fs').writeFileSync(${JSON.stringify(marker)}, 'planted'); })`;
  const source = body + ' '.repeat(length - body.length);
  const make = `
    const { Script } = require('node:vm');
    const v8 = require('node:v8');
    v8.setFlagsFromString('--no-lazy');
    const script = new Script(require('node:fs').readFileSync(0, 'utf8'), { filename: 'planted.js' });
    v8.setFlagsFromString('--lazy');
    process.stdout.write(script.createCachedData().toString('base64'));`;
  // The source on stdin: as long as the bundle, it is too long for one argument.
  const data = Buffer.from(execFileSync(NODE, ['-e', make], { env: {}, input: source, maxBuffer: 1 << 26 }).toString(), 'base64');
  rmSync(cache(), { force: true }); // a new file, root's, whoever owned the last one
  writeFileSync(cache(), Buffer.concat([Buffer.from(header(nodeVersion)), data]), { mode: 0o644 });
  chmodSync(cache(), 0o644);
}

before(() => {
  // A copy of the build in a directory of root's own (the checkout may be anyone's).
  dir = mkdtempSync(join(tmpdir(), 'rexecd-cache-'));
  chmodSync(dir, 0o755);
  for (const f of DEPLOYED.filter((f) => f !== 'rexecd-main.cache')) cpSync(join(DIST, f), join(dir, f), { recursive: true });
  marker = join(dir, 'planted-code-ran');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('a trusted cache', () => {
  test('built by --build-code-cache: used', () => {
    execFileSync(NODE, [join(dir, 'rexecd.cjs'), '--build-code-cache'], { env: {} });
    const r = version();
    assert.equal(r.status, 0);
    assert.match(r.out, /^rexecd \d+\.\d+\.\d+\ncode cache: used\n$/);
  });

  test('a cache is code: planted with the right owner, mode and header, it runs instead of rexecd', () => {
    plantCache();
    const r = version();
    assert.equal(r.planted, true, `the planted cache did not run: ${r.out}`);
  });
});

describe('an untrusted cache is ignored, never run', () => {
  test('owned by another user', () => {
    plantCache();
    chownSync(cache(), NOBODY, NOBODY);
    const r = version();
    assert.equal(r.planted, false);
    assert.match(r.out, new RegExp(`code cache: ignored: .*rexecd-main\\.cache is owned by uid ${NOBODY}\\n`));
    assert.match(r.out, /^rexecd \d/);
  });

  test('writable by group or others', () => {
    for (const mode of [0o664, 0o646]) {
      plantCache();
      chmodSync(cache(), mode);
      const r = version();
      assert.equal(r.planted, false, mode.toString(8));
      assert.match(r.out, new RegExp(`code cache: ignored: .*is writable by group or others \\(mode ${mode.toString(8)}\\)`));
    }
  });

  test('in a directory others can write to (the planted file could have been swapped in)', () => {
    plantCache();
    chmodSync(dir, 0o777);
    try {
      const r = version();
      assert.equal(r.planted, false);
      assert.match(r.out, /code cache: ignored: .* is writable by group or others \(mode 777\)/);
    } finally {
      chmodSync(dir, 0o755);
    }
  });

  test('stale: made for the bundle before it changed', () => {
    execFileSync(NODE, [join(dir, 'rexecd.cjs'), '--build-code-cache'], { env: {} });
    const later = new Date(Date.now() + 5000);
    utimesSync(bundle(), later, later);
    const r = version();
    assert.match(r.out, /code cache: ignored: .* was made for another bundle or node/);
    assert.equal(r.status, 0);
  });

  test('foreign: made by another node', () => {
    plantCache('v0.0.1');
    const r = version();
    assert.equal(r.planted, false);
    assert.match(r.out, /code cache: ignored: .* was made for another bundle or node \(\{"node":"v0\.0\.1"/);
  });

  test('not a cache at all, or a symbolic link: ignored', () => {
    writeFileSync(cache(), 'garbage', { mode: 0o644 });
    assert.match(version().out, /code cache: ignored: .* is not a rexecd code cache/);
    rmSync(cache());
    execFileSync('ln', ['-s', '/etc/hostname', cache()]);
    assert.match(version().out, /code cache: ignored: .*rexecd-main\.cache: ELOOP/);
    rmSync(cache());
    assert.match(version().out, /code cache: ignored: .*rexecd-main\.cache: ENOENT/);
  });
});
