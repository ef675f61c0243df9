// scripts/install.sh, as a packager runs it (DESTDIR staging root, PREFIX=/usr,
// --system-config) and as an administrator does (a PREFIX of its own, no DESTDIR):
// what it installs, that the installed tree runs (its code cache used, a real login
// under openbsd-inetd through the installed inetd line, the installed client), and
// that --uninstall leaves nothing.  Both prefixes are temporary directories.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, type World } from '../harness/world';
import { NODE, ROOT } from '../harness/paths';
import { runInstall, tree, type InstallRun } from '../harness/install';

const TRIPLET = `${process.platform}_${process.arch}`;
const tmp = mkdtempSync(join(tmpdir(), 'rexecd-install-test-'));
chmodSync(tmp, 0o755);
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Every configuration file the checkout ships, relative to the checkout. */
function shippedConfigs(): string[] {
  const out = ['inetd.conf.example'];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${rel}/${e.name}`);
      else out.push(`${rel}/${e.name}`);
    }
  };
  walk('etc');
  return out.sort();
}
/** Where install.sh puts a shipped configuration as an example. */
const exampleOf = (config: string): string => `share/doc/rexecd/examples/${config.replace(/^etc\//, '')}`;

/** What names rexecd as a checkout runs it: no installed file may say it. */
const CHECKOUT = /\/opt\/rexecd|\/usr\/bin\/node|dist\/rexecd/;

function assertOk(r: InstallRun): void {
  assert.equal(r.status, 0, `install.sh failed:\n${r.stdout}${r.stderr}`);
}

describe('install.sh into a staging root (DESTDIR, PREFIX=/usr, --system-config)', () => {
  const stage = join(tmp, 'stage');
  let files: string[] = [];
  before(() => {
    assertOk(runInstall({ prefix: '/usr', destdir: stage, args: ['--system-config'] }));
    files = tree(stage);
  });

  test('the program, its client, koffi, man pages and every shipped configuration as an example', () => {
    const have = new Set(files);
    const expected = [
      'l usr/sbin/rexecd',
      'l usr/bin/rexec',
      'f usr/lib/rexecd/rexecd.cjs',
      'f usr/lib/rexecd/rexecd-main.js',
      'f usr/lib/rexecd/rexec.cjs',
      `f usr/lib/rexecd/koffi/${TRIPLET}/koffi.node`,
      'f usr/lib/rexecd/install-manifest',
      'f usr/share/man/man8/rexecd.8.gz',
      'f usr/share/man/man1/rexec.1.gz',
      'f usr/share/doc/rexecd/README.md',
      // The README's links point into docs/.
      ...readdirSync(join(ROOT, 'docs')).filter((d) => d.endsWith('.md')).map((d) => `f usr/share/doc/rexecd/docs/${d}`),
      ...shippedConfigs().map((c) => `f usr/${exampleOf(c)}`),
    ];
    for (const f of expected) assert.ok(have.has(f), `missing ${f}; have:\n${files.join('\n')}`);
    const regular = files.filter((f) => f.startsWith('f ') || f.startsWith('l '));
    const system = regular.filter((f) => !f.startsWith('f usr/') && !f.startsWith('l usr/'));
    assert.deepEqual(regular.filter((f) => !expected.includes(f) && !system.includes(f)), [], 'files nobody asked for');
  });

  test('no code cache in a staging root: it belongs to the machine that runs rexecd', () => {
    assert.ok(!files.includes('f usr/lib/rexecd/rexecd-main.cache'));
  });

  test('the symlinks point into lib/rexecd, the #! lines name the node that runs rexecd', () => {
    const link = (p: string): string => spawnSync('readlink', [join(stage, p)], { encoding: 'utf8' }).stdout.trim();
    assert.equal(link('usr/sbin/rexecd'), '../lib/rexecd/rexecd.cjs');
    assert.equal(link('usr/bin/rexec'), '../lib/rexecd/rexec.cjs');
    for (const f of ['rexecd.cjs', 'rexec.cjs']) {
      assert.equal(readFileSync(join(stage, 'usr/lib/rexecd', f), 'utf8').split('\n')[0], `#!${NODE}`);
    }
  });

  test('--system-config: PAM, xinetd (disabled), fail2ban (off) in /etc, the units in /lib/systemd/system', () => {
    const system: Record<string, string> = {
      'etc/pam.d/rexec': 'etc/pam.d/rexec',
      'etc/xinetd.d/rexec': 'etc/xinetd.d/rexec',
      'etc/fail2ban/filter.d/rexecd.conf': 'etc/fail2ban/filter.d/rexecd.conf',
      'etc/fail2ban/jail.d/rexecd.conf': 'etc/fail2ban/jail.d/rexecd.conf',
    };
    for (const unit of readdirSync(join(ROOT, 'etc', 'systemd'))) system[`lib/systemd/system/${unit}`] = `etc/systemd/${unit}`;
    for (const [installed, shipped] of Object.entries(system)) {
      // The same text as the example (which is the shipped file, launch paths adjusted).
      assert.equal(readFileSync(join(stage, installed), 'utf8'), readFileSync(join(stage, 'usr', exampleOf(shipped)), 'utf8'), installed);
    }
    assert.match(readFileSync(join(stage, 'etc/xinetd.d/rexec'), 'utf8'), /^\s*disable\s*=\s*yes\s*$/m);
    assert.match(readFileSync(join(stage, 'etc/fail2ban/jail.d/rexecd.conf'), 'utf8'), /^enabled\s*=\s*false\s*$/m);
  });

  test('every installed configuration names /usr/sbin/rexecd, nothing of the checkout', () => {
    const texts = files.filter((f) => f.startsWith('f ') && !/\.(gz|node|js|cjs)$|install-manifest$|\.md$/.test(f)).map((f) => f.slice(2));
    assert.ok(texts.length >= shippedConfigs().length);
    for (const f of texts) assert.doesNotMatch(readFileSync(join(stage, f), 'utf8'), CHECKOUT, f);
    const inetd = readFileSync(join(stage, 'usr', exampleOf('inetd.conf.example')), 'utf8');
    assert.match(inetd, /^exec\s+stream\s+tcp\s+nowait\s+root\s+\/usr\/sbin\/rexecd\s+rexecd$/m);
    assert.match(readFileSync(join(stage, 'lib/systemd/system/rexec@.service'), 'utf8'), /^ExecStart=-\/usr\/sbin\/rexecd$/m);
    assert.match(readFileSync(join(stage, 'etc/xinetd.d/rexec'), 'utf8'), /^\s*server\s*=\s*\/usr\/sbin\/rexecd$/m);
  });

  test('--uninstall leaves the staging root empty; a configuration changed since is kept, and said', () => {
    writeFileSync(join(stage, 'etc/pam.d/rexec'), '# the administrator changed this\n', { flag: 'a' });
    const r = runInstall({ prefix: '/usr', destdir: stage, args: ['--uninstall'] });
    assertOk(r);
    assert.match(r.stderr, /kept .*\/etc\/pam\.d\/rexec: changed since it was installed/);
    assert.deepEqual(tree(stage), ['d etc', 'd etc/pam.d', 'f etc/pam.d/rexec']);
    rmSync(join(stage, 'etc'), { recursive: true });
    assertOk(runInstall({ prefix: '/usr', destdir: stage, args: ['--system-config'] }));
    assertOk(runInstall({ prefix: '/usr', destdir: stage, args: ['--uninstall'] }));
    assert.deepEqual(tree(stage), []);
  });
});

describe('install.sh to a PREFIX of its own, run from there', () => {
  const prefix = join(tmp, 'prefix', 'local');
  let w: World<'installed'>;
  before(async () => {
    assertOk(runInstall({ prefix }));
    // The line the installed example gives inetd, as inetd would run it.
    const line = readFileSync(join(prefix, exampleOf('inetd.conf.example')), 'utf8').split('\n').find((l) => /^exec\s+stream\s+tcp\s+nowait\s/.test(l));
    assert.ok(line, 'no nowait line in the installed inetd.conf.example');
    const [, , , , , program = '', ...argv] = line.split(/\s+/);
    assert.equal(program, join(prefix, 'sbin', 'rexecd'));
    assert.deepEqual(argv, ['rexecd']);
    w = await startWorld({
      users: [{ name: 'instuser', password: 'inst-pass', method: 'sha512crypt' }],
      services: { installed: { program, args: ['--auth', 'shadow', '--fail-delay', '0.3'] } },
    });
  });
  after(async () => {
    await w?.stop();
  });

  test('the code cache is built there by the node of the #! line, and used', () => {
    assert.ok(existsSync(join(prefix, 'lib/rexecd/rexecd-main.cache')));
    const r = spawnSync(join(prefix, 'sbin', 'rexecd'), ['--version'], { env: {}, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^rexecd \d+\.\d+\.\d+\ncode cache: used\n$/);
  });

  test('a login under openbsd-inetd through the installed inetd line, with the installed client', () => {
    const client = join(prefix, 'bin', 'rexec');
    const env = { PATH: '/usr/bin:/bin', HOME: '/nonexistent' };
    const ok = spawnSync(client, ['-l', 'instuser', '-p', 'inst-pass', `127.0.0.1:${w.ports.installed}`, 'id -un; echo to-stderr >&2'], { env, encoding: 'utf8', timeout: 20000 });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'instuser\n');
    assert.equal(ok.stderr, 'to-stderr\n');
    const refused = spawnSync(client, ['-l', 'instuser', '-p', 'wrong', `[::1]:${w.ports.installed}`, 'id'], { env, encoding: 'utf8', timeout: 20000 });
    assert.equal(refused.status, 1);
    assert.equal(refused.stderr, 'Login incorrect.\n');
  });

  test('a second install over it is refused: uninstall first', () => {
    const r = runInstall({ prefix });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /already has rexecd .*--uninstall/);
  });

  test('bad settings are refused with the reason', () => {
    const other = join(tmp, 'other');
    const cases: [{ env?: Record<string, string>; args?: string[]; prefix?: string }, RegExp][] = [
      [{ env: { NODE: '/bin/false' } }, /\/bin\/false does not run/],
      [{ env: { NODE: 'node' } }, /NODE must be an absolute path/],
      [{ env: { NODE_FLAGS: '--a --b' } }, /NODE_FLAGS must be one word/],
      [{ args: ['--frobnicate'] }, /unknown argument: --frobnicate/],
      [{ prefix: 'usr' }, /PREFIX must be an absolute path/],
    ];
    for (const [opts, message] of cases) {
      const r = runInstall({ prefix: other, ...opts });
      assert.equal(r.status, 1, `${JSON.stringify(opts)}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.ok(!existsSync(other), `${JSON.stringify(opts)} left ${other}`);
    }
  });

  test('--uninstall removes all of it, the directories it made included', () => {
    const r = runInstall({ prefix, args: ['--uninstall'] });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!existsSync(join(tmp, 'prefix')), `left: ${existsSync(join(tmp, 'prefix')) ? tree(join(tmp, 'prefix')).join(' ') : ''}`);
  });
});
