// ~/.netrc as ftp and glibc's ruserpass() read it, and the refusal of a file that
// holds a password while group or others can read it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseNetrc, findEntry, lookupNetrc, type NetrcEntry } from '../../src/client/netrc';
import { ClientError } from '../../src/client/errors';

const dir = mkdtempSync(join(tmpdir(), 'rexec-netrc-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SAMPLE = `# comments are just unknown words to ftp; we skip them the same way
machine alpha login al password "p w\\"d"
machine ALPHA.example.org login root password secret
  account ignored
macdef init
cd /tmp
ls

machine beta
  login bea
default login anon password guest
machine gamma login gam password g
`;

test('parse: machines, quoting, macdef skipped, default', () => {
  const e = parseNetrc(SAMPLE);
  assert.deepEqual(e.map((x) => [x.machine, x.login, x.password]), [
    ['alpha', 'al', 'p w"d'],
    ['ALPHA.example.org', 'root', 'secret'],
    ['beta', 'bea', undefined],
    [undefined, 'anon', 'guest'],
    ['gamma', 'gam', 'g'],
  ]);
});

test('find: host in any case, the login must fit a user already chosen, default last', () => {
  const e = parseNetrc(SAMPLE);
  const found = (host: string, user: string | undefined): NetrcEntry => {
    const entry = findEntry(e, host, user);
    assert.ok(entry, `no entry for ${host} ${user}`);
    return entry;
  };
  assert.equal(found('Alpha', undefined).password, 'p w"d');
  assert.equal(found('alpha.example.org', 'root').password, 'secret');
  assert.equal(findEntry(e, 'alpha', 'root'), undefined); // neither al's entry nor anon's default fits root
  assert.equal(found('alpha', 'anon').password, 'guest');
  assert.equal(found('gamma', undefined).login, 'gam'); // a later machine beats the default
  assert.equal(found('nowhere', undefined).login, 'anon');
  assert.equal(findEntry(parseNetrc('machine a login x password y'), 'b', undefined), undefined);
});

function netrc(name: string, text: string, mode: number): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  chmodSync(p, mode);
  return p;
}

test('lookup: a private file gives login and password; a missing one gives nothing', () => {
  const p = netrc('ok', 'machine h login u password pw\n', 0o600);
  assert.deepEqual(lookupNetrc(p, 'h', undefined), { login: 'u', password: 'pw' });
  assert.deepEqual(lookupNetrc(join(dir, 'missing'), 'h', undefined), { login: undefined, password: undefined });
});

test('lookup: a password in a file readable by group or others is refused, as ftp does', () => {
  for (const mode of [0o640, 0o604, 0o644, 0o660, 0o610]) {
    const p = netrc(`open-${mode.toString(8)}`, 'machine h login u password pw\n', mode);
    assert.throws(() => lookupNetrc(p, 'h', undefined), (e: unknown) => {
      assert.ok(e instanceof ClientError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /readable by group or others/);
      assert.match(e.message, new RegExp(`chmod 600 ${p}`));
      assert.ok(!e.message.includes('pw\n') && !/\bpw\b/.test(e.message), 'no password in the message');
      return true;
    });
  }
  // Without a password for us in it, an open file is harmless (ftp only checks then).
  const loginOnly = netrc('login-only', 'machine h login u\nmachine other login o password x\n', 0o644);
  assert.deepEqual(lookupNetrc(loginOnly, 'h', undefined), { login: 'u', password: undefined });
});

test("lookup: a password in someone else's file is refused", () => {
  const p = netrc('foreign', 'machine h login u password pw\n', 0o600);
  chownSync(p, 65534, 65534);
  assert.throws(() => lookupNetrc(p, 'h', undefined, 0), /belongs to uid 65534/);
  assert.deepEqual(lookupNetrc(p, 'h', undefined, 65534), { login: 'u', password: 'pw' });
});
