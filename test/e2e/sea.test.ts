// The single executable (npm run build:sea): built here into a directory far from
// the repository (no node_modules anywhere near it), from the node that runs rexecd
// in these tests (REXECD_TEST_NODE), then put in inetd.conf as the program itself
// and used for real logins, with the shadow method and with PAM, under systemd
// native activation and as its own --listen listener; and, started as `rexec`, as
// the client.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, SHIPPED_PAM_SERVICE, type World } from '../harness/world';
import { NODE, ROOT } from '../harness/paths';
import { glibcClient, raw, request } from '../harness/clients';
import { socketActivate, startListener, type Launched } from '../harness/launchers';

const FAST = ['--fail-delay', '0.3'];
const dir = mkdtempSync(join(tmpdir(), 'rexecd-sea-test-'));
const exe = join(dir, `rexecd-${process.platform}-${process.arch}`);

// Build before the tests are declared, so that a node without the SEA fuse skips
// them with the reason instead of failing.
const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-sea.mjs'), '--node', NODE, '--out', dir], { encoding: 'utf8' });
const skip = build.status === 3 ? `cannot build a single executable from ${NODE}: ${build.stderr.trim()}` : false;
if (build.status !== 0 && build.status !== 3) throw new Error(`build-sea failed (${build.status}):\n${build.stdout}${build.stderr}`);

let w: World<'shadow' | 'pam'>;
let activated: Launched;
before(async () => {
  if (skip) return;
  w = await startWorld({
    users: [{ name: 'seauser', password: 'sea-pass' }],
    pam: { rexec: SHIPPED_PAM_SERVICE },
    services: {
      shadow: { program: exe, args: ['--auth', 'shadow', ...FAST] },
      pam: { program: exe, args: ['--auth', 'pam', ...FAST] },
    },
  });
  activated = await socketActivate(w, { program: [exe], args: ['--auth', 'shadow', ...FAST] });
});
after(async () => {
  await activated?.proc.stop();
  await w?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the single executable', { skip }, () => {
  test('is one file plus koffi/<triplet>/koffi.node beside it', () => {
    assert.ok(existsSync(exe));
    assert.ok(existsSync(join(dir, 'koffi', `${process.platform}_${process.arch}`, 'koffi.node')));
  });

  test('carries the code cache of its bundle, made by itself when it was built', () => {
    const r = spawnSync(exe, ['--version'], { env: {}, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^rexecd \d+\.\d+\.\d+\ncode cache: used\n$/);
  });

  test('started under the name rexec (a symlink to it), it is the client: a real login', () => {
    const link = join(dir, 'bin', 'rexec');
    mkdirSync(join(dir, 'bin'), { recursive: true });
    symlinkSync(exe, link);
    const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent' };
    const version = spawnSync(link, ['--version'], { env, encoding: 'utf8' });
    const { version: packageVersion } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    assert.equal(version.stdout, `rexec ${packageVersion}\n`, version.stderr);
    const r = spawnSync(link, ['-l', 'seauser', '-p', 'sea-pass', `127.0.0.1:${w.ports.shadow}`, 'id', '-un;', 'echo', 'err', '>&2'], { env, encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'seauser\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('serves a real login under openbsd-inetd (shadow): stdout, stderr channel, stdin', async () => {
    const input = randomBytes(200_000);
    const r = await glibcClient({ port: w.ports.shadow, user: 'seauser', password: 'sea-pass', command: 'id -un; echo err >&2; sha256sum', input });
    assert.equal(r.code, 0, r.stderr.toString());
    const [name, hash = ''] = r.stdout.toString().split('\n');
    assert.equal(name, 'seauser');
    assert.equal(hash.split(' ')[0], createHash('sha256').update(input).digest('hex'));
    assert.equal(r.stderr.toString(), 'err\n');
    // The log line comes from the executable (syslog ident rexecd, our pid).
    await w.waitLog(/rexecd\[\d+\]: user seauser from 127\.0\.0\.1$/);
  });

  test('serves a real login with PAM (libpam through koffi)', async () => {
    const r = await raw({ port: w.ports.pam, host: '::1', steps: [request({ user: 'seauser', password: 'sea-pass', command: 'id -un' })] });
    assert.equal(r.main.toString('latin1'), '\0seauser\n');
  });

  test('refuses with the one diagnostic', async () => {
    const r = await raw({ port: w.ports.shadow, steps: [request({ user: 'seauser', password: 'nope', command: 'id' })] });
    assert.equal(r.main.toString('latin1'), '\x01Login incorrect.\n');
  });

  test('serves a login under systemd native socket activation (fd 3)', async () => {
    const r = await glibcClient({ port: activated.port, user: 'seauser', password: 'sea-pass', command: 'id -un; env' });
    assert.equal(r.code, 0, r.stderr.toString());
    assert.match(r.stdout.toString(), /^seauser\n/);
    assert.doesNotMatch(r.stdout.toString(), /^(LISTEN_|NODE_)/m);
  });

  test('serves --listen: the listener starts the executable itself per connection', async () => {
    const listener = await startListener(w, { program: [exe], hosts: ['127.0.0.1'], args: ['--auth', 'shadow', ...FAST] });
    try {
      const r = await glibcClient({ port: listener.port, user: 'seauser', password: 'sea-pass', command: 'id -un; echo err >&2' });
      assert.equal(r.stdout.toString(), 'seauser\n', r.stderr.toString());
      assert.equal(r.stderr.toString(), 'err\n');
    } finally {
      await listener.proc.stop();
    }
  });

  test('needs koffi/ beside it and nothing else: without it, it fails loudly', () => {
    const alone = join(dir, 'alone');
    mkdirSync(alone);
    const copy = join(alone, 'rexecd');
    linkSync(exe, copy);
    const r = spawnSync(copy, [], { env: {}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.notEqual(r.status, 0);
    assert.notEqual(r.status, 2, 'it ran without its native module: koffi was found elsewhere');
    assert.match(r.stderr, /Koffi/i);
  });
});
