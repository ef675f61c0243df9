// The Debian package (scripts/package-deb.mjs, npm run package:deb), built here from
// the node that runs rexecd in these tests, checked by lintian, and installed with
// apt-get into a fresh Debian 12 root (debootstrap minbase bookworm; see
// test/harness/debian-root.ts): its dependencies come from Debian's archive, it
// opens no port by itself, a login works through the installed files under
// openbsd-inetd (the line update-inetd registered, once enabled, moved to a loopback
// port) and under systemd socket activation as rexec@.service starts it, and
// `apt-get purge` leaves no file of its own behind.  The test user exists only in
// that root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, type Stats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, mkpasswd } from '../harness/world';
import { NODE, ROOT } from '../harness/paths';
import { glibcClient, latin1, raw, request } from '../harness/clients';
import { exec, freshRoot, type DebianRoot, type Ran } from '../harness/debian-root';
import { tree } from '../harness/install';
import type { Watched } from '../harness/processes';
import { SyslogSink } from '../harness/syslog-sink';
import { sleep } from '../harness/wait';

const USER = 'debuser';
const PASSWORD = 'deb-pass';
/** What update-inetd keeps for our disabled line. */
const DISABLED_LINE = '#<off># exec\tstream\ttcp\tnowait\troot\t/usr/sbin/rexecd\trexecd';
/**
 * Paths dpkg and apt keep their own records in, and the root's volatile ones:
 * not files of any package.
 */
const BOOKKEEPING = /^(proc|dev|sys|tmp|run)\/|^var\/(lib\/dpkg|lib\/apt|cache\/apt|cache\/debconf|cache\/ldconfig|log)\//;

const tmp = mkdtempSync(join(tmpdir(), 'rexecd-deb-test-'));
let deb = '';
let built: Ran;
let root: DebianRoot;
/** Every file of the root before rexecd was installed. */
let before_ = new Set<string>();
/** What appeared while openbsd-inetd was installed (after rexecd): its and its dependencies'. */
let inetdDelta = new Set<string>();
let inetdConfBefore = '';
/** What dpkg -L listed as rexecd's. */
let ourFiles: string[] = [];

before(async () => {
  // Built as `npm run package:deb` does, with xz -1 instead of -6 (same contents; 30 s less).
  built = await exec(process.execPath, [join(ROOT, 'scripts', 'package-deb.mjs'), '--fast', '--node', NODE, '--out', tmp], { timeout: 300_000 });
  assert.equal(built.status, 0, `package-deb failed:\n${built.stdout}${built.stderr}`);
  deb = readdirSync(tmp).find((f) => /^rexecd_.*\.deb$/.test(f)) ?? '';
  assert.ok(deb, `no .deb in ${tmp}`);
  root = await freshRoot();
});
after(async () => {
  await root?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

/** Run in the root; fail with its output unless it succeeds. */
async function must(argv: readonly string[], what = argv.join(' ')): Promise<string> {
  const r = await root.run(argv, { timeout: 240_000 });
  assert.equal(r.status, 0, `${what} failed (${r.status}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}
const readRoot = (path: string): string => readFileSync(join(root.dir, path), 'utf8');

/** Every non-directory path in the root but dpkg's and apt's records. */
function rootFiles(): Set<string> {
  return new Set(tree(root.dir).filter((e) => !e.startsWith('d ')).map((e) => e.slice(2)).filter((p) => !BOOKKEEPING.test(p)));
}

test('lintian: no error, and every warning it leaves is explained in docs/install.md', () => {
  assert.match(built.stdout, /no error/);
  const warnings = [...built.stdout.matchAll(/^W: rexecd: ([\w-]+)/gm)].map((m) => m[1]);
  const guide = readFileSync(join(ROOT, 'docs', 'install.md'), 'utf8');
  for (const tag of new Set(warnings)) assert.ok(guide.includes(`\`${tag}\``), `lintian warning ${tag} is not explained in docs/install.md`);
  // The one error overridden (embedded-library: the executable is a copy of node) is explained too.
  assert.ok(guide.includes('`embedded-library`'));
});

test('apt-get installs it into a fresh Debian 12 root, its dependencies from Debian', async () => {
  await must(['apt-get', 'update', '-qq']);
  await must(['useradd', '-m', '-s', '/bin/sh', '-p', mkpasswd(PASSWORD, 'sha512crypt'), USER]);
  before_ = rootFiles();
  copyFileSync(join(tmp, deb), join(root.dir, 'tmp', deb));
  const out = await must(['apt-get', 'install', '-y', '--no-install-recommends', `/tmp/${deb}`]);
  // update-inetd and perl are not in minbase: apt resolved them from Debian.
  assert.match(out, /Unpacking update-inetd /);
  assert.match(out, /Unpacking perl /);
  assert.match(await must(['dpkg-query', '-W', '-f', '${db:Status-Abbrev}', 'rexecd', 'update-inetd']), /^ii ii $/);
  ourFiles = (await must(['dpkg', '-L', 'rexecd'])).split('\n').filter(Boolean);
});

test('no inetd at install: no line; once one is installed, dpkg-reconfigure registers it, disabled', async () => {
  assert.ok(!existsSync(join(root.dir, 'etc/inetd.conf')));
  const beforeInetd = rootFiles();
  await must(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'openbsd-inetd']);
  inetdDelta = new Set([...rootFiles()].filter((p) => !beforeInetd.has(p)));
  inetdConfBefore = readRoot('etc/inetd.conf');
  assert.doesNotMatch(inetdConfBefore, /rexecd/);
  await must(['dpkg-reconfigure', 'rexecd']);
  assert.ok(readRoot('etc/inetd.conf').split('\n').includes(DISABLED_LINE), readRoot('etc/inetd.conf'));
});

test('it opens no port by itself: the inetd line is disabled, no unit enabled, xinetd disabled', async () => {
  const conf = readRoot('etc/inetd.conf');
  assert.ok(conf.split('\n').includes(DISABLED_LINE), conf);
  assert.doesNotMatch(conf, /^exec\s/m);
  assert.equal(readdirSync(join(root.dir, 'etc/systemd/system')).filter((f) => /rexec/.test(f)).length, 0);
  const wants = join(root.dir, 'etc/systemd/system/sockets.target.wants');
  assert.ok(!existsSync(wants) || !readdirSync(wants).some((f) => /rexec/.test(f)));
  assert.match(readRoot('etc/xinetd.d/rexec'), /^\s*disable\s*=\s*yes\s*$/m);
  const ss = await exec('ss', ['-ltnH', 'sport', '= :512']);
  assert.equal(ss.stdout.trim(), '', 'something listens on port 512');
});

test('the files: conffiles in /etc, the units, the executable with its code cache, the client', async () => {
  const conffiles = (await must(['dpkg-query', '-W', '-f', '${Conffiles}', 'rexecd'])).trim().split('\n').map((l) => l.trim().split(' ')[0]).sort();
  assert.deepEqual(conffiles, ['/etc/fail2ban/filter.d/rexecd.conf', '/etc/fail2ban/jail.d/rexecd.conf', '/etc/pam.d/rexec', '/etc/xinetd.d/rexec']);
  for (const unit of ['rexec.socket', 'rexec@.service', 'rexecd.socket', 'rexecd.service']) assert.ok(ourFiles.includes(`/lib/systemd/system/${unit}`), unit);
  assert.match(await must(['/usr/sbin/rexecd', '--version']), /^rexecd \d+\.\d+\.\d+\ncode cache: used\n$/);
  assert.match(await must(['rexec', '--version']), /^rexec \d+\.\d+\.\d+\n$/);
  // No node in the root: the executable is its own.
  assert.equal((await root.run(['sh', '-c', 'command -v node nodejs'])).stdout, '');
});

test('the maintainer scripts are idempotent', async () => {
  const conf = readRoot('etc/inetd.conf');
  await must(['/var/lib/dpkg/info/rexecd.postinst', 'configure', '']);
  await must(['/var/lib/dpkg/info/rexecd.postinst', 'configure', '']);
  assert.equal(readRoot('etc/inetd.conf'), conf);
  // An administrator's own choice (the line enabled) survives a reconfiguration.
  await must(['update-inetd', '--enable', 'exec']);
  const enabled = readRoot('etc/inetd.conf');
  await must(['dpkg-reconfigure', 'rexecd']);
  assert.equal(readRoot('etc/inetd.conf'), enabled);
  await must(['update-inetd', '--disable', 'exec']);
  assert.equal(readRoot('etc/inetd.conf'), conf);
});

/** A login as USER (stdout, the stderr channel) and a refusal, on port at host. */
async function loginAndRefusal(port: number, host: '127.0.0.1' | '::1', sink: SyslogSink): Promise<void> {
  const ok = await glibcClient({ port, host, family: host === '::1' ? 6 : 4, user: USER, password: PASSWORD, command: 'id -un; echo to-stderr >&2' });
  assert.equal(ok.code, 0, ok.stderr.toString());
  assert.equal(ok.stdout.toString(), `${USER}\n`);
  assert.equal(ok.stderr.toString(), 'to-stderr\n');
  const refused = await raw({ port, host, steps: [request({ user: USER, password: 'wrong', command: 'id' })] });
  assert.equal(latin1(refused.main), '\x01Login incorrect.\n');
  const end = Date.now() + 5000;
  while (!sink.drain().some((l) => l.text.includes(`refused user "${USER}" from ${host}`))) {
    assert.ok(Date.now() < end, `no log line; have:\n${sink.lines.map((l) => l.text).join('\n')}`);
    await sleep(25);
  }
}

/** Start a launcher in the root; resolves once it listens on port. */
async function startLauncher(argv: readonly string[], { chroot, port }: { chroot: boolean; port: number }): Promise<Watched> {
  const launcher = root.start(argv, { chroot });
  const end = Date.now() + 10_000;
  for (;;) {
    const ss = await exec('ss', ['-ltnH', 'sport', `= :${port}`]);
    if (ss.stdout.includes('127.0.0.1') || ss.stdout.includes('[::1]')) return launcher;
    if (!launcher.running || Date.now() > end) {
      await launcher.stop();
      assert.fail(`${argv.join(' ')} did not listen on ${port}: ${launcher.output()}`);
    }
    await sleep(30);
  }
}

async function withSink(body: (sink: SyslogSink) => Promise<void>): Promise<void> {
  // The root's /dev is its own directory: rexecd's syslog lands here.
  const sink = new SyslogSink(join(root.dir, 'dev', 'log'));
  try {
    await body(sink);
  } finally {
    sink.close();
    rmSync(join(root.dir, 'dev', 'log'), { force: true });
  }
}

test('a login through the installed files under inetd: update-inetd --enable exec, on a loopback port', async () => {
  await must(['update-inetd', '--enable', 'exec']);
  const line = readRoot('etc/inetd.conf').split('\n').find((l) => /^exec\s/.test(l)) ?? '';
  assert.equal(line, DISABLED_LINE.replace('#<off># ', ''));
  await must(['update-inetd', '--disable', 'exec']);
  // The enabled line as it is, but on a loopback port of its own for each family.
  const port = await freePort();
  const [, ...rest] = line.split('\t');
  const conf = [`127.0.0.1:${port}\t${rest.join('\t').replace('\ttcp\t', '\ttcp4\t')}`, `[::1]:${port}\t${rest.join('\t').replace('\ttcp\t', '\ttcp6\t')}`].join('\n');
  writeFileSync(join(root.dir, 'tmp', 'inetd.conf'), `${conf}\n`);
  await withSink(async (sink) => {
    const inetd = await startLauncher(['/usr/sbin/inetd', '-i', '/tmp/inetd.conf'], { chroot: true, port });
    try {
      await loginAndRefusal(port, '127.0.0.1', sink);
      await loginAndRefusal(port, '::1', sink);
      assert.ok(sink.lines.some((l) => l.text.includes(`user ${USER} from 127.0.0.1`)));
    } finally {
      await inetd.stop();
    }
  });
});

test('a login under systemd socket activation (Accept=yes), as rexec@.service starts it', async () => {
  const unit = readRoot('lib/systemd/system/rexec@.service');
  const execStart = (/^ExecStart=[-@:+!]*(.+)$/m.exec(unit)?.[1] ?? '').trim().split(/\s+/);
  assert.equal(execStart[0], '/usr/sbin/rexecd');
  const inetdStyle = /^StandardInput=socket$/m.test(unit);
  const port = await freePort();
  // systemd-socket-activate is the host's (the root has no systemd); what it starts
  // runs chrooted into the root: chroot execs, so the pid is the same (LISTEN_PID).
  await withSink(async (sink) => {
    const sd = await startLauncher(['systemd-socket-activate', '-l', `127.0.0.1:${port}`, '--accept', ...(inetdStyle ? ['--inetd'] : []), '/usr/sbin/chroot', root.dir, ...execStart], { chroot: false, port });
    try {
      await loginAndRefusal(port, '127.0.0.1', sink);
    } finally {
      await sd.stop();
    }
  });
});

test('rsh-server conflicts: apt would remove rexecd to install it', async () => {
  const sim = await must(['apt-get', 'install', '-s', 'rsh-server']);
  assert.match(sim, /^Remv rexecd /m);
});

test('apt-get purge leaves no file of its own behind, and inetd.conf as it was', async () => {
  await must(['apt-get', 'purge', '-y', '-qq', 'rexecd']);
  assert.equal(readRoot('etc/inetd.conf'), inetdConfBefore);
  // What every package still installed owns (our dependencies stay, and so do the
  // directories we shared with them).
  const owned = new Set();
  for (const list of readdirSync(join(root.dir, 'var/lib/dpkg/info')).filter((f) => f.endsWith('.list'))) {
    for (const p of readRoot(`var/lib/dpkg/info/${list}`).split('\n')) {
      owned.add(p);
      // Debian 12 roots have a merged /usr: dpkg's /lib/x is /usr/lib/x on disk.
      owned.add(p.replace(/^\/(bin|sbin|lib|lib64)\//, '/usr/$1/'));
    }
  }
  // Of what dpkg listed as ours: no file is left, and no directory but one another
  // package owns or that holds others' files.
  const left = ourFiles.filter((p) => {
    if (before_.has(p.slice(1))) return false; // e.g. /lib, a symlink in a merged-/usr root
    let st: Stats;
    try {
      st = lstatSync(join(root.dir, p));
    } catch {
      return false;
    }
    return !st.isDirectory() || (!owned.has(p) && readdirSync(join(root.dir, p)).length === 0);
  });
  assert.deepEqual(left, []);
  // And nothing is left of what appeared since before the install, but what
  // installing openbsd-inetd made (its maintainer scripts' files, /etc/inetd.conf
  // whose text is checked above) and files installed packages own.
  const stray = [...rootFiles()].filter((p) => !before_.has(p) && !inetdDelta.has(p) && !owned.has(`/${p}`));
  assert.deepEqual(stray, [], 'files no package owns appeared');
});
