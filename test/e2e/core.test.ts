// rexecd under a real openbsd-inetd, shadow method, with the glibc rexec_af client
// and a raw-socket client: the protocol, every diagnostic and refusal, and what the
// command receives (protocol.md §2-§4).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { startWorld, mkpasswd, type UserSpec, type World } from '../harness/world';
import { NODE, REXECD } from '../harness/paths';
import { glibcClient, latin1 as text, raw, request, type GlibcClientOptions, type RequestFields } from '../harness/clients';
import { SHELL_ENVIRONMENT, SHELL_SIGNALS } from '../harness/commands';

const FAST = ['--auth', 'shadow', '--fail-delay', '0.3'];
const SERVICES = {
  shadow: FAST,
  root: [...FAST, '--allow-root'],
  empty: [...FAST, '--allow-empty-password'],
  deny: [...FAST, '--deny-file', '/etc/rexecd.deny'],
  slow: [...FAST, '--timeout', '1.5'],
  defaults: ['--auth', 'shadow'],
  badopt: ['--no-such-option'],
  version: ['--version'],
  help: ['--help'],
};
type ServiceName = keyof typeof SERVICES;
let w: World<ServiceName>;
const users: UserSpec[] = [
  { name: 'rxtest', password: 'rxpass', groups: [['rxextra', 4300], ['rxmore', 4301]] },
  { name: 'rxsha512', password: 'p-sha512', method: 'sha512crypt' },
  { name: 'rxsha256', password: 'p-sha256', method: 'sha256crypt' },
  { name: 'rxmd5', password: 'p-md5', method: 'md5crypt' },
  { name: 'rxbcrypt', password: 'p-bcrypt', method: 'bcrypt' },
  { name: 'rxdes', password: 'p-des', method: 'descrypt' },
  { name: 'rxlocked', password: 'rxpass', hash: '!' + mkpasswd('rxpass') },
  { name: 'rxstar', password: 'rxpass', hash: '*' },
  { name: 'rxempty', password: '', hash: '' },
  { name: 'rxexpired', password: 'rxpass', shadow: { expire: 100 } },
  { name: 'rxmustchg', password: 'rxpass', shadow: { lastChange: 0 } },
  { name: 'rxaged', password: 'rxpass', shadow: { lastChange: 100, max: 30, inactive: 10 } },
  { name: 'rxnohome', password: 'rxpass', home: null },
  { name: 'rxclosed', password: 'rxpass', homeMode: 0o700, homeOwner: 0 },
  { name: 'rxbadsh', password: 'rxpass', shell: '/nonexistent/shell' },
  { name: 'rxbash', password: 'rxpass', shell: '/bin/bash' },
  { name: 'abcdefghijklmnop', password: 'abcdefghijklmnop' }, // 16 and 16
  { name: 'rxroot', password: 'rxpass', uid: 0, gid: 0 },
  { name: 'rxdenied', password: 'rxpass' },
];

before(async () => {
  w = await startWorld({
    users,
    etc: { 'rexecd.deny': '# test deny list\nrxdenied  # this one\n\n' },
    services: SERVICES,
  });
});
after(() => w?.stop());

/** The glibc client as rxtest (unless o says otherwise), to the shadow service (unless o.service). */
const run = (o: Partial<GlibcClientOptions> & { command: string; service?: ServiceName }) =>
  glibcClient({ port: w.ports[o.service ?? 'shadow'], user: 'rxtest', password: 'rxpass', ...o });
/** One request over a raw connection; with stderr, a stderr listener and its port in the request. */
const rawReq = (service: ServiceName, fields: RequestFields, { stderr = false } = {}) =>
  raw({ port: w.ports[service], stderr, steps: (p) => [request({ port: stderr ? String(p) : '', ...fields })] });

describe('successful logins', () => {
  test('stdout on the connection, stderr on the stderr channel', async () => {
    const r = await run({ command: 'echo out; echo err >&2; id -un' });
    assert.equal(r.code, 0, text(r.stderr));
    assert.equal(text(r.stdout), 'out\nrxtest\n');
    assert.equal(text(r.stderr), 'err\n');
  });

  test('no stderr channel (glibc sends an empty port): stderr merged into the connection', async () => {
    const r = await run({ command: 'echo out; echo err >&2', stderrChannel: false });
    assert.equal(r.code, 0);
    assert.equal(text(r.stdout), 'out\nerr\n');
  });

  test('port "0" means no stderr channel too; the status byte is one \\0 first', async () => {
    const r = await raw({ port: w.ports.shadow, steps: [request({ port: '0', user: 'rxtest', password: 'rxpass', command: 'echo a; echo b >&2' })] });
    assert.equal(text(r.main), '\0a\nb\n');
    assert.equal(r.mainClosed, 'eof');
  });

  test('IPv6: ::1 with a stderr channel dialled back over IPv6', async () => {
    const r = await run({ host: '::1', family: 6, command: 'echo out; echo err >&2; echo $RHOST' });
    assert.equal(r.code, 0, text(r.stderr));
    assert.equal(text(r.stdout), 'out\n::1\n');
    assert.equal(text(r.stderr), 'err\n');
  });

  for (const u of users.filter((x) => x.method)) {
    test(`password hashed with ${u.method} (${mkpasswd(u.password, u.method).slice(0, 4)})`, async () => {
      const r = await run({ user: u.name, password: u.password, command: 'id -un' });
      assert.equal(text(r.stdout), `${u.name}\n`, text(r.stderr));
    });
  }

  test('a 16-byte user name with a 16-byte password', async () => {
    const r = await run({ user: 'abcdefghijklmnop', password: 'abcdefghijklmnop', command: 'id -un' });
    assert.equal(text(r.stdout), 'abcdefghijklmnop\n', text(r.stderr));
  });

  test('the login shell runs the command: bash for a bash user', async () => {
    const r = await run({ user: 'rxbash', command: 'echo $BASH_VERSION | cut -c1; echo $0' });
    assert.match(text(r.stdout), /^\d\nbash\n$/);
  });

  test('the command gets exactly the documented environment', async () => {
    const r = await run({ command: SHELL_ENVIRONMENT });
    const home = w.user('rxtest').home;
    assert.equal(text(r.stdout), [`HOME=${home}`, 'LOGNAME=rxtest', 'PATH=/usr/local/bin:/usr/bin:/bin', 'RHOST=127.0.0.1', 'SHELL=/bin/sh', 'USER=rxtest', ''].join('\n'));
  });

  test('the user, the supplementary groups, the home directory and umask 022', async () => {
    const r = await run({ command: 'id -u; id -G; pwd; umask' });
    const u = w.user('rxtest');
    assert.equal(text(r.stdout), `${u.uid}\n${u.gid} 4300 4301\n${u.home}\n0022\n`);
  });

  test('fds 0, 1 and 2 only; blocking; no signal ignored or blocked', async () => {
    // The shell reads its own status with builtins first: while dash waits for a
    // child it blocks every signal itself, which a forked grep would see.
    const r = await run({ command: `${SHELL_SIGNALS}; ls /proc/$$/fd; ls -l /proc/$$/fd/0 | grep -c socket` });
    assert.equal(text(r.stdout), 'SigBlk:0000000000000000\nSigIgn:0000000000000000\n0\n1\n2\n1\n');
  });

  test('rexecd is replaced by the shell: its pid runs the shell, whose parent is inetd', async () => {
    const r = await run({ command: 'echo $$; cat /proc/$PPID/comm; cat /proc/$$/comm' });
    const [pid, parent, self] = text(r.stdout).split('\n');
    assert.equal(parent, 'inetd');
    assert.equal(self, 'sh');
    const line = await w.waitLog(new RegExp(`rexecd\\[${pid}\\]: user rxtest from 127\\.0\\.0\\.1$`));
    assert.ok(line);
  });

  test('20 MB sent right after the request reaches the command intact', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const want = createHash('sha256').update(data).digest('hex');
    const r = await run({ command: 'sha256sum', input: data, timeout: 60000 });
    assert.equal(text(r.stdout).split(' ')[0], want);
  });

  test('bytes in the same segment as the request are the command\'s stdin (nothing read past the NUL)', async () => {
    const r = await raw({ port: w.ports.shadow, steps: (p) => [Buffer.concat([request({ port: String(p), user: 'rxtest', password: 'rxpass', command: 'cat' }), Buffer.from('hello\nworld\n')]), { end: true }], stderr: true });
    assert.equal(text(r.main), '\0hello\nworld\n');
  });

  test('a command of MAX_ARG_STRLEN - 1 bytes runs', async () => {
    const cmd = 'echo fits #' + 'x'.repeat(131071 - 11);
    const r = await rawReq('shadow', { user: 'rxtest', password: 'rxpass', command: cmd });
    assert.equal(text(r.main), '\0fits\n');
  });

  test('root logs in only with --allow-root', async () => {
    const r = await run({ service: 'root', user: 'rxroot', command: 'id -u; echo $PATH' });
    assert.equal(text(r.stdout), '0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n');
  });

  test('an empty password hash logs in only with --allow-empty-password', async () => {
    const r = await run({ service: 'empty', user: 'rxempty', password: 'anything', command: 'id -un' });
    assert.equal(text(r.stdout), 'rxempty\n');
  });
});

describe('diagnostics', () => {
  for (const port of ['abc', '80', '1023', '70000', '123456', '-1']) {
    test(`stderr port "${port}": Bad stderr port.`, async () => {
      const r = await rawReq('shadow', { port, user: 'rxtest', password: 'rxpass', command: 'id' });
      assert.equal(text(r.main), '\x01Bad stderr port.\n');
    });
  }

  test("a stderr port nobody listens on: Can't connect to stderr port.", async () => {
    const r = await raw({ port: w.ports.shadow, steps: [request({ port: '1029', user: 'rxtest', password: 'rxpass', command: 'id' })] });
    assert.equal(text(r.main), "\x01Can't connect to stderr port.\n");
    await w.waitLog(/can't connect to stderr port 127\.0\.0\.1 port 1029: connect: Connection refused/);
  });

  test('a 17-byte user name: username too long, at once, without waiting for the NUL', async () => {
    const r = await raw({ port: w.ports.shadow, steps: [Buffer.from('\0abcdefghijklmnopq')], timeout: 5000 });
    assert.equal(text(r.main), '\x01username too long\n');
    assert.ok(r.ms < 1000);
  });

  test('a 17-byte password: password too long (glibc shows the text)', async () => {
    const r = await run({ password: 'abcdefghijklmnopq', command: 'id' });
    assert.equal(r.code, 1);
    assert.equal(text(r.stderr), 'password too long\n');
  });

  test('a command of MAX_ARG_STRLEN bytes: command too long', async () => {
    const r = await rawReq('shadow', { user: 'rxtest', password: 'rxpass', command: 'x'.repeat(131072) });
    assert.equal(text(r.main), '\x01command too long\n');
  });

  test('no home directory: No remote directory., before any \\0', async () => {
    const r = await rawReq('shadow', { user: 'rxnohome', password: 'rxpass', command: 'id' });
    assert.equal(text(r.main), '\x01No remote directory.\n');
  });

  test('a home the user cannot enter: No remote directory. (chdir is done as the user)', async () => {
    const r = await rawReq('shadow', { user: 'rxclosed', password: 'rxpass', command: 'id' });
    assert.equal(text(r.main), '\x01No remote directory.\n');
    await w.waitLog(/no home directory .*rxclosed for user "rxclosed" from 127\.0\.0\.1: EACCES/);
  });

  test('a shell that does not exist: \\0, then "<shell>: <error>" on stderr without a flag', async () => {
    const r = await rawReq('shadow', { user: 'rxbadsh', password: 'rxpass', command: 'id' }, { stderr: true });
    assert.equal(text(r.main), '\0');
    assert.equal(text(r.stderr), '/nonexistent/shell: No such file or directory\n');
  });

  test('a bad option inside inetd: the client gets Try again., the log says why', async () => {
    const r = await rawReq('badopt', { user: 'rxtest', password: 'rxpass', command: 'id' });
    assert.equal(text(r.main), '\x01Try again.\n');
    await w.waitLog(/configuration error: Unknown option '--no-such-option'/);
  });

  for (const option of ['version', 'help'] as const) {
    test(`--${option} inside inetd: no text of it reaches the client (Try again.), the log says why`, async () => {
      const r = await rawReq(option, { user: 'rxtest', password: 'rxpass', command: 'id' });
      assert.equal(text(r.main), '\x01Try again.\n');
      await w.waitLog(new RegExp(`configuration error: --${option} on the launcher's command line`));
    });
  }
});

describe('refusals: one answer, the same delay, the real reason in the log', () => {
  const cases: [name: string, user: string, password: string, log: RegExp][] = [
    ['wrong password', 'rxtest', 'wrong', /refused user "rxtest" from 127\.0\.0\.1: bad password/],
    ['unknown user', 'nosuchuser', 'rxpass', /refused user "nosuchuser" from 127\.0\.0\.1: unknown user/],
    ['empty user name', '', 'rxtest', /refused user "" from 127\.0\.0\.1: unknown user/],
    ['locked (!)', 'rxlocked', 'rxpass', /"rxlocked" .*: account locked/],
    ['locked (*)', 'rxstar', 'rxpass', /"rxstar" .*: account locked/],
    ['empty hash', 'rxempty', 'x', /"rxempty" .*: empty password refused/],
    ['expired account', 'rxexpired', 'rxpass', /"rxexpired" .*: account expired/],
    ['password must be changed', 'rxmustchg', 'rxpass', /"rxmustchg" .*: password must be changed/],
    ['password expired past inactivity', 'rxaged', 'rxpass', /"rxaged" .*: account inactive/],
    ['root without --allow-root', 'rxroot', 'rxpass', /"rxroot" .*: root refused/],
  ];
  for (const [name, user, password, log] of cases) {
    test(name, async () => {
      const r = await rawReq('shadow', { user, password, command: 'id' });
      assert.equal(text(r.main), '\x01Login incorrect.\n');
      assert.ok(r.ms >= 300, `answered after ${r.ms} ms, before the fail delay`);
      await w.waitLog(log);
    });
  }

  test('a user in the deny file', async () => {
    const r = await rawReq('deny', { user: 'rxdenied', password: 'rxpass', command: 'id' });
    assert.equal(text(r.main), '\x01Login incorrect.\n');
    await w.waitLog(/"rxdenied" .*: denied by \/etc\/rexecd\.deny/);
    const ok = await run({ service: 'deny', command: 'id -un' });
    assert.equal(text(ok.stdout), 'rxtest\n');
  });

  test('/etc/nologin refuses everyone but root', async () => {
    w.nsenter('sh', ['-c', 'echo maintenance > /etc/nologin']);
    try {
      const r = await rawReq('root', { user: 'rxtest', password: 'rxpass', command: 'id' });
      assert.equal(text(r.main), '\x01Login incorrect.\n');
      await w.waitLog(/"rxtest" .*: \/etc\/nologin exists/);
      const root = await run({ service: 'root', user: 'rxroot', command: 'id -u' });
      assert.equal(text(root.stdout), '0\n');
    } finally {
      w.nsenter('rm', ['-f', '/etc/nologin']);
    }
  });

  test('the default fail delay is 2 s from the start of authentication', async () => {
    const [bad, unknown] = await Promise.all([
      rawReq('defaults', { user: 'rxtest', password: 'wrong', command: 'id' }),
      rawReq('defaults', { user: 'nosuchuser', password: 'wrong', command: 'id' }),
    ]);
    for (const r of [bad, unknown]) {
      assert.equal(text(r.main), '\x01Login incorrect.\n');
      assert.ok(r.ms >= 2000 && r.ms < 3500, `${r.ms} ms`);
    }
  });
});

describe('deadline and disconnects', () => {
  test('a client that stops sending is cut off at the deadline, and it is logged', async () => {
    const r = await raw({ port: w.ports.slow, steps: [Buffer.from('\0rxtest\0rxp')], timeout: 10000 });
    assert.equal(r.main.length, 0);
    assert.equal(r.mainClosed, 'eof');
    assert.ok(r.ms >= 1400 && r.ms < 4000, `${r.ms} ms`);
    await w.waitLog(/timeout \(1\.5 s\) waiting for password from 127\.0\.0\.1/);
  });

  test('the deadline covers the whole request, not each byte', async () => {
    const drip = [];
    for (const c of '\0rxtest\0') drip.push(Buffer.from(c), { delay: 250 });
    const r = await raw({ port: w.ports.slow, steps: drip, timeout: 10000 });
    assert.equal(r.main.length, 0);
    assert.ok(r.ms < 3500, `${r.ms} ms`);
  });

  const steps: [field: string, bytes: Buffer[]][] = [
    ['port', [Buffer.from('12')]],
    ['user', [Buffer.from('\0rxt')]],
    ['password', [Buffer.from('\0rxtest\0rx')]],
    ['command', [Buffer.from('\0rxtest\0rxpass\0ec')]],
  ];
  for (const [field, bytes] of steps) {
    test(`the client leaves during the ${field}: rexecd ends and says so`, async () => {
      const r = await raw({ port: w.ports.shadow, steps: [...bytes, { delay: 100 }, { end: true }] });
      assert.equal(r.main.length, 0);
      await w.waitLog(new RegExp(`client closed the connection during ${field} from 127\\.0\\.0\\.1`));
    });
  }

  test('the client resets the connection during the request', async () => {
    await raw({ port: w.ports.shadow, steps: [Buffer.from('\0rxtest\0'), { delay: 100 }, { reset: true }] });
    await w.waitLog(/(client closed the connection during password|recv: Connection reset by peer)/);
  });
});

test('run from a terminal (fd 0 not a socket): a hint and exit status 2', () => {
  const r = spawnSync(NODE, [REXECD], { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /fd 0 is not a TCP connection/);
  assert.match(r.stderr.toString(), /--listen 127\.0\.0\.1:5120/);
});

test('a bad option from a terminal prints the usage and exits 2', () => {
  const r = spawnSync(NODE, [REXECD, '--timeout', 'soon'], { env: {} });
  assert.equal(r.status, 2);
  assert.match(r.stderr.toString(), /--timeout: "soon" is not a number of seconds/);
  assert.match(r.stderr.toString(), /^usage: rexecd/m);
});

test('no log line holds a password', () => {
  const all = w.logs().map((l) => l.text).join('\n');
  assert.ok(all.length > 0);
  for (const u of users) if (u.password.length >= 5 && u.password !== u.name) assert.ok(!all.includes(u.password), `log holds ${u.password}`);
  assert.ok(!all.includes('rxpass'));
});
