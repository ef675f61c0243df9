// man/rexecd.8: renders with man -l without a single warning, and documents every
// option that rexecd --help lists and every diagnostic text rexecd can send.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { USAGE } from '../../src/options';
import { Diagnostic } from '../../src/protocol/diagnostics';
import { ROOT } from '../harness/paths';

const PAGE = join(ROOT, 'man', 'rexecd.8');
const rendered = (() => {
  const r = spawnSync('man', ['-l', PAGE], { encoding: 'utf8', env: { PATH: process.env.PATH, MANWIDTH: '200', LANG: 'C.UTF-8' } });
  return { ...r, text: (r.stdout ?? '').replace(/.\x08/g, '').replace(/\u2010\s*\n\s*/g, '') };
})();

test('man -l renders it, and groff finds nothing to warn about', () => {
  assert.equal(rendered.status, 0, rendered.stderr);
  assert.equal(rendered.stderr, '');
  const lint = spawnSync('groff', ['-mandoc', '-ww', '-z', PAGE], { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
  assert.equal(lint.status, 0);
  assert.equal(lint.stderr, '');
  assert.match(rendered.text, /^REXECD\(8\)/);
});

test('the sections an administrator looks for are there', () => {
  for (const s of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'PROTOCOL', 'OPTIONS', 'AUTHENTICATION', 'LOGGING', 'FILES', 'EXIT STATUS', 'DIAGNOSTICS', 'EXAMPLES', 'SECURITY CONSIDERATIONS', 'SEE ALSO']) {
    assert.match(rendered.text, new RegExp(`^${s}$`, 'm'), s);
  }
});

test('every option of rexecd --help is documented', () => {
  const options = [...USAGE.matchAll(/^ {2}(-\w, )?(--?[\w-]+)/gm)].flatMap((m) => [m[1]?.slice(0, 2), m[2]]).filter((o): o is string => Boolean(o));
  assert.ok(options.length >= 15, `found only ${options.join(' ')}`);
  for (const o of options) assert.ok(rendered.text.includes(o), `${o} is not in the man page`);
});

test('every diagnostic text is documented, exactly', () => {
  for (const text of Object.values(Diagnostic)) assert.match(rendered.text, new RegExp(`^ +${text.replace(/[.]/g, '\\.')}$`, 'm'), text);
});

test('examples for inetd, systemd and --listen', () => {
  assert.match(rendered.text, /exec +stream +tcp +nowait +root +\/usr\/sbin\/rexecd +rexecd$/m);
  assert.match(rendered.text, /exec +stream +tcp +nowait +root +\/usr\/bin\/node +node \/opt\/rexecd\/dist\/rexecd\.cjs/);
  assert.match(rendered.text, /ListenStream=512/);
  assert.match(rendered.text, /StandardInput=socket/);
  assert.match(rendered.text, /rexecd --listen 127\.0\.0\.1:\d+/);
});
