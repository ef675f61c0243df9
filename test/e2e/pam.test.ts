// PAM, the default method (SPEC §3): real Linux-PAM with pam_unix inside the
// namespace harness, our etc/pam.d/rexec as the service file, syslog captured on a
// private /dev/log.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorld, mkpasswd, SHIPPED_PAM_SERVICE, type UserSpec, type World } from '../harness/world';
import { glibcClient, latin1 as text, raw, request } from '../harness/clients';
import { FACILITY, SEVERITY } from '../harness/syslog-sink';

// Ours, plus pam_access with a rule on the remote host: IPv4 loopback is denied.
const WITH_ACCESS = `${SHIPPED_PAM_SERVICE}\naccount required pam_access.so accessfile=/etc/rexecd-access.conf\n`;
const FAST = ['--fail-delay', '0.4'];
const SERVICES = {
  pam: FAST,
  pamlog: [...FAST, '-l', '--log-commands'],
  empty: [...FAST, '--allow-empty-password'],
  access: [...FAST, '--pam-service', 'rexec-access'],
  defaults: [],
};
const users: UserSpec[] = [
  { name: 'rxtest', password: 'rxpass' },
  { name: 'rxsha512', password: 'p-sha512', method: 'sha512crypt' },
  { name: 'rxlocked', password: 'rxpass', hash: '!' + mkpasswd('rxpass') },
  { name: 'rxexpired', password: 'rxpass', shadow: { expire: 100 } },
  { name: 'rxmustchg', password: 'rxpass', shadow: { lastChange: 0 } },
  { name: 'rxempty', password: '', hash: '' },
];
let w: World<keyof typeof SERVICES>;
before(async () => {
  w = await startWorld({
    users,
    pam: { rexec: SHIPPED_PAM_SERVICE, 'rexec-access': WITH_ACCESS },
    etc: {
      environment: 'REXECD_PAM_ENV=from-pam-env\n',
      'rexecd-access.conf': '-:ALL:127.0.0.1\n+:ALL:ALL\n',
    },
    services: SERVICES,
  });
});
after(() => w?.stop());

const login = (service: keyof typeof SERVICES, user: string, password: string, command = 'id -un') =>
  raw({ port: w.ports[service], steps: [request({ user, password, command })] });

describe('PAM logins (the default method)', () => {
  test('a yescrypt user', async () => {
    const r = await glibcClient({ port: w.ports.pam, user: 'rxtest', password: 'rxpass', command: 'id -un; echo err >&2' });
    assert.equal(text(r.stdout), 'rxtest\n');
    assert.equal(text(r.stderr), 'err\n');
  });

  test('a SHA-512 user', async () => {
    const r = await login('pam', 'rxsha512', 'p-sha512');
    assert.equal(text(r.main), '\0rxsha512\n');
  });

  test('pam_env adds a variable that reaches the command', async () => {
    const r = await login('pam', 'rxtest', 'rxpass', 'echo $REXECD_PAM_ENV; echo $USER');
    assert.equal(text(r.main), '\0from-pam-env\nrxtest\n');
  });

  test('an empty password only with --allow-empty-password (PAM_DISALLOW_NULL_AUTHTOK otherwise)', async () => {
    const no = await login('pam', 'rxempty', '');
    assert.equal(text(no.main), '\x01Login incorrect.\n');
    const yes = await login('empty', 'rxempty', '');
    assert.equal(text(yes.main), '\0rxempty\n');
  });
});

describe('PAM refusals: the same answer after the same delay; the reason in syslog', () => {
  const cases: [name: string, user: string, password: string, log: RegExp, moduleLog?: RegExp][] = [
    ['wrong password', 'rxtest', 'wrong', /refused user "rxtest" from 127\.0\.0\.1: PAM: authentication: Authentication failure/],
    ['unknown user', 'nosuchuser', 'x', /refused user "nosuchuser" from 127\.0\.0\.1: PAM: authentication: /],
    ['locked account', 'rxlocked', 'rxpass', /refused user "rxlocked" from .*: PAM: authentication: /],
    // Debian's common-account ends in pam_deny, so PAM reports its code; pam_unix's own line says "expired".
    ['expired account', 'rxexpired', 'rxpass', /refused user "rxexpired" from .*: PAM: account: /, /account rxexpired has expired/],
    ['password must be changed', 'rxmustchg', 'rxpass', /refused user "rxmustchg" from .*: PAM: password must be changed, which rexec cannot do/],
  ];
  for (const [name, user, password, log, moduleLog] of cases) {
    test(name, async () => {
      const r = await login('pam', user, password);
      if (moduleLog) await w.waitLog(moduleLog);
      assert.equal(text(r.main), '\x01Login incorrect.\n');
      assert.ok(r.ms >= 400 && r.ms < 1500, `${r.ms} ms`);
      const line = await w.waitLog(log);
      assert.equal(line.facility, FACILITY.authpriv);
      assert.equal(line.severity, SEVERITY.notice);
    });
  }

  test('pam_nologin: /etc/nologin refuses a user', async () => {
    w.nsenter('sh', ['-c', 'echo down > /etc/nologin']);
    try {
      const r = await login('pam', 'rxtest', 'rxpass');
      assert.equal(text(r.main), '\x01Login incorrect.\n');
      await w.waitLog(/refused user "rxtest" from 127\.0\.0\.1: PAM: authentication: /);
    } finally {
      w.nsenter('rm', ['-f', '/etc/nologin']);
    }
  });

  test('pam_access sees the remote host (PAM_RHOST): 127.0.0.1 denied, ::1 allowed', async () => {
    const v4 = await login('access', 'rxtest', 'rxpass');
    assert.equal(text(v4.main), '\x01Login incorrect.\n');
    await w.waitLog(/refused user "rxtest" from 127\.0\.0\.1: PAM: account: Permission denied/);
    const v6 = await raw({ port: w.ports.access, host: '::1', steps: [request({ user: 'rxtest', password: 'rxpass', command: 'echo $RHOST' })] });
    assert.equal(text(v6.main), '\0::1\n');
  });

  test('unknown user and wrong password take the same time (PAM\'s own random delay is replaced)', async () => {
    const times: { bad: number[]; unknown: number[] } = { bad: [], unknown: [] };
    for (let i = 0; i < 3; i++) {
      times.bad.push((await login('defaults', 'rxtest', 'wrong')).ms);
      times.unknown.push((await login('defaults', 'nosuchuser', 'wrong')).ms);
    }
    for (const t of [...times.bad, ...times.unknown]) assert.ok(t >= 2000 && t < 2400, `${t} ms`);
  });
});

describe('syslog', () => {
  test('a success is logged at authpriv.info as "user X from ADDR"', async () => {
    await login('pam', 'rxtest', 'rxpass');
    const line = await w.waitLog(/rexecd\[\d+\]: user rxtest from 127\.0\.0\.1$/);
    assert.equal(line.facility, FACILITY.authpriv);
    assert.equal(line.severity, SEVERITY.info);
  });

  test('-l logs the connection (daemon.info); --log-commands logs the command', async () => {
    await login('pamlog', 'rxtest', 'rxpass', 'echo logged-command');
    const conn = await w.waitLog(/connection from 127\.0\.0\.1 port \d+/);
    assert.equal(conn.facility, FACILITY.daemon);
    assert.equal(conn.severity, SEVERITY.info);
    await w.waitLog(/user rxtest from 127\.0\.0\.1: echo logged-command$/);
  });

  test('without --log-commands no command text is logged', async () => {
    await login('pam', 'rxtest', 'rxpass', 'echo secret-command-text');
    await w.waitLog(/user rxtest from/);
    assert.ok(!w.logs().some((l) => l.text.includes('secret-command-text')));
  });

  test('protocol errors are logged at daemon.notice with the peer', async () => {
    await raw({ port: w.ports.pam, steps: [Buffer.from('\0abcdefghijklmnopqrstuvwxyz')] });
    const line = await w.waitLog(/username too long from 127\.0\.0\.1/);
    assert.equal(line.facility, FACILITY.daemon);
    assert.equal(line.severity, SEVERITY.notice);
  });

  test('every line carries ident rexecd and a pid; none holds a password', async () => {
    const lines = w.logs().filter((l) => /rexecd\[/.test(l.text));
    assert.ok(lines.length > 10);
    for (const l of w.logs()) {
      for (const p of ['rxpass', 'p-sha512']) assert.ok(!l.text.includes(p), l.text);
    }
  });
});

describe('without libpam', () => {
  let nopam: World<'auto' | 'pam'>;
  before(async () => {
    nopam = await startWorld({ users: [{ name: 'rxtest', password: 'rxpass' }], hideLibpam: true, services: { auto: FAST, pam: [...FAST, '--auth', 'pam'] } });
  });
  after(() => nopam?.stop());

  test('the default falls back to the shadow method and warns in the log', async () => {
    const r = await raw({ port: nopam.ports.auto, steps: [request({ user: 'rxtest', password: 'rxpass', command: 'id -un' })] });
    assert.equal(text(r.main), '\0rxtest\n');
    const line = await nopam.waitLog(/libpam cannot be loaded .*; using the shadow method/);
    assert.equal(line.severity, SEVERITY.warning);
  });

  test('--auth pam without libpam is a configuration error: Try again.', async () => {
    const r = await raw({ port: nopam.ports.pam, steps: [request({ user: 'rxtest', password: 'rxpass', command: 'id -un' })] });
    assert.equal(text(r.main), '\x01Try again.\n');
    await nopam.waitLog(/--auth pam, but libpam cannot be loaded/);
  });
});
