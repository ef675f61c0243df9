// rexecd under systemd socket activation with Accept=yes (SPEC §1), driven by the
// real systemd-socket-activate inside the world's namespace:
//   --inetd   the connection on fds 0/1, as StandardInput=socket gives it
//   native    the connection on fd 3 with LISTEN_FDS=1 and LISTEN_PID; rexecd's own
//             fd 0 is /dev/null, so a login can only work if it served fd 3
// and the shipped unit files, checked by systemd-analyze.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWorld, type World } from '../harness/world';
import { NODE, REXECD, ROOT } from '../harness/paths';
import { glibcClient, raw, request, type ClientResult } from '../harness/clients';
import { socketActivate, type Launched } from '../harness/launchers';

const ARGS = ['--auth', 'shadow', '--fail-delay', '0.3'];
// Passed by systemd-socket-activate to rexecd on top of its own LISTEN_* variables:
// none of it may reach the command.
const MARKER = { REXECD_TEST_MARKER: 'leaked' };
let w: World<never>;
const launchers: Partial<Record<'inetd' | 'native' | 'native6' | 'stale', Launched>> = {};
/** A launcher started by before() (throws if it failed to start). */
const launcher = (name: keyof typeof launchers): Launched => {
  const l = launchers[name];
  if (!l) throw new Error(`launcher ${name} did not start`);
  return l;
};

before(async () => {
  w = await startWorld({ users: [{ name: 'sdtest', password: 'sd-pass' }], services: {} });
  launchers.inetd = await socketActivate(w, { inetd: true, args: ARGS, setenv: MARKER });
  // The native launcher records what rexecd is handed (its fds and environment)
  // through a shell that then execs it: same pid, so LISTEN_PID still matches.
  const record = `ls -l /proc/$$/fd > ${w.dir}/native-fds; env > ${w.dir}/native-env; exec "$@"`;
  launchers.native = await socketActivate(w, { inetd: false, program: ['/bin/sh', '-c', record, 'sh', NODE, REXECD], args: ARGS, setenv: MARKER });
  launchers.native6 = await socketActivate(w, { inetd: false, host: '::1', args: ARGS, setenv: MARKER });
  // LISTEN_* meant for another process (wrong pid) must be ignored: fd 0 is served.
  launchers.stale = await socketActivate(w, { inetd: true, args: ARGS, setenv: { ...MARKER, LISTEN_FDS: '1', LISTEN_PID: '1', LISTEN_FDNAMES: 'connection' } });
});
after(async () => {
  for (const l of Object.values(launchers)) await l.proc.stop();
  await w?.stop();
});

// The command shows its descriptors, its environment, writes to stderr and hashes stdin.
const PROBE = 'ls -l /proc/$$/fd; echo ==env; env; echo to-stderr >&2; echo ==stdin; sha256sum';

/** What PROBE printed, taken apart. */
interface Probe {
  /** fd number to what /proc says it is. */
  readonly fds: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly stdinHash: string | undefined;
  readonly text: string;
}

function parseProbe(stdout: Buffer): Probe {
  const text = stdout.toString();
  const [fdPart = '', rest = ''] = text.split('==env\n');
  const [envPart = '', stdinPart = ''] = rest.split('==stdin\n');
  const fds: Record<string, string> = {};
  for (const line of fdPart.split('\n')) {
    const [, fd, what] = / (\d+) -> (.+)$/.exec(line) ?? [];
    if (fd !== undefined && what !== undefined) fds[fd] = what;
  }
  const env: Record<string, string> = {};
  for (const line of envPart.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { fds, env, stdinHash: stdinPart.split(' ')[0], text };
}

async function probe(launcher: Launched, { stderrChannel = true } = {}): Promise<Probe & { r: ClientResult; inputHash: string }> {
  const input = randomBytes(300_000);
  const r = await glibcClient({
    port: launcher.port,
    host: launcher.host,
    family: launcher.host === '::1' ? 6 : 4,
    user: 'sdtest',
    password: 'sd-pass',
    command: PROBE,
    stderrChannel,
    input,
  });
  assert.equal(r.code, 0, `client failed: ${r.stderr.toString()}\nlauncher: ${launcher.proc.output()}`);
  const p = parseProbe(r.stdout);
  return { ...p, r, inputHash: createHash('sha256').update(input).digest('hex') };
}

function assertCommandWorld(p: Probe & { r: ClientResult; inputHash: string }, rhost: string, { stderrChannel = true } = {}) {
  // fds 0 and 1 are the one connection, fd 2 the stderr channel (or the connection);
  // nothing else: systemd's fd 3 is not passed on to the command.
  assert.deepEqual(Object.keys(p.fds).sort(), ['0', '1', '2'], p.text);
  assert.match(p.fds[0] ?? '', /^socket:\[\d+\]$/);
  assert.equal(p.fds[1], p.fds[0]);
  if (stderrChannel) {
    assert.match(p.fds[2] ?? '', /^socket:\[\d+\]$/);
    assert.notEqual(p.fds[2], p.fds[0]);
    assert.equal(p.r.stderr.toString(), 'to-stderr\n');
  } else {
    assert.equal(p.fds[2], p.fds[0]);
    assert.match(p.text, /^to-stderr$/m);
  }
  // The environment is rexecd's own, built from scratch (SPEC §4); sh adds PWD.
  assert.deepEqual(Object.keys(p.env).sort(), ['HOME', 'LOGNAME', 'PATH', 'PWD', 'RHOST', 'SHELL', 'USER'], p.text);
  assert.equal(p.env.USER, 'sdtest');
  assert.equal(p.env.HOME, w.user('sdtest').home);
  assert.equal(p.env.RHOST, rhost);
  assert.equal(p.env.PATH, '/usr/local/bin:/usr/bin:/bin');
  // stdin: every byte after the request reached the command.
  assert.equal(p.stdinHash, p.inputHash);
}

async function refusal(launcher: Launched) {
  const r = await raw({ port: launcher.port, host: launcher.host, steps: [request({ user: 'sdtest', password: 'wrong', command: 'id' })] });
  assert.equal(r.main.toString('latin1'), '\x01Login incorrect.\n');
  assert.equal(r.mainClosed, 'eof');
}

describe('systemd-socket-activate --accept --inetd (StandardInput=socket)', () => {
  test('a login: connection on fds 0/1, stderr channel on 2, clean environment, stdin intact', async () => {
    assertCommandWorld(await probe(launcher('inetd')), '127.0.0.1');
    await w.waitLog(/user sdtest from 127\.0\.0\.1$/);
  });

  test('a refusal is the one diagnostic on the connection', async () => {
    await refusal(launcher('inetd'));
    await w.waitLog(/refused user "sdtest" from 127\.0\.0\.1/);
  });

  test('LISTEN_* variables for another pid are ignored (fd 0 served) and not passed on', async () => {
    const p = await probe(launcher('stale'));
    assertCommandWorld(p, '127.0.0.1');
    assert.equal(Object.keys(p.env).filter((k) => k.startsWith('LISTEN_')).length, 0);
  });
});

describe('systemd-socket-activate --accept (native: fd 3, LISTEN_FDS=1)', () => {
  test('a login: the command gets the connection as fds 0/1 and no LISTEN_* variable', async () => {
    const p = await probe(launcher('native'));
    assertCommandWorld(p, '127.0.0.1');
    for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES', 'REXECD_TEST_MARKER']) assert.equal(p.env[k], undefined, k);
  });

  test('IPv6 (::1) without a stderr channel: stderr on the connection', async () => {
    assertCommandWorld(await probe(launcher('native6'), { stderrChannel: false }), '::1', { stderrChannel: false });
    await w.waitLog(/user sdtest from ::1$/);
  });

  test('a refusal is the one diagnostic on the connection (fd 3)', async () => {
    await refusal(launcher('native'));
    await refusal(launcher('native6'));
  });

  test('what rexecd was handed: the connection on fd 3, /dev/null on fd 0, LISTEN_FDS=1 and its pid', () => {
    // So the logins above could only work over fd 3, and the variables the command
    // did not get were really there to leak.
    const fds = readFileSync(join(w.dir, 'native-fds'), 'utf8');
    assert.match(fds, / 0 -> \/dev\/null$/m);
    assert.match(fds, / 3 -> socket:\[\d+\]$/m);
    const env = readFileSync(join(w.dir, 'native-env'), 'utf8');
    assert.match(env, /^LISTEN_FDS=1$/m);
    assert.match(env, /^LISTEN_PID=\d+$/m);
    assert.match(env, /^REXECD_TEST_MARKER=leaked$/m);
  });
});

describe('etc/systemd unit files', () => {
  const dir = join(ROOT, 'etc', 'systemd');
  const socket = readFileSync(join(dir, 'rexec.socket'), 'utf8');
  const service = readFileSync(join(dir, 'rexec@.service'), 'utf8');
  const settings = (text: string): Record<string, string> => {
    const out: Record<string, string> = {};
    let section = '';
    for (const line of text.split('\n')) {
      section = /^\[(\w+)\]$/.exec(line)?.[1] ?? section;
      const [, key, value] = /^(\w+)=(.*)$/.exec(line) ?? [];
      if (key !== undefined && value !== undefined) out[`${section}.${key}`] = value;
    }
    return out;
  };

  test('systemd-analyze verify accepts them without a single warning', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'rexec.socket'), join(dir, 'rexec@.service')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
  });

  test('rexec.socket: port 512, one instance per connection, at most 64', () => {
    const s = settings(socket);
    assert.equal(s['Socket.ListenStream'], '512');
    assert.equal(s['Socket.Accept'], 'yes');
    assert.equal(s['Socket.MaxConnections'], '64');
  });

  test('rexec@.service: inetd layout, stderr not the journal, instances collected', () => {
    const s = settings(service);
    assert.equal(s['Service.StandardInput'], 'socket');
    assert.ok(s['Service.StandardError'] === undefined || s['Service.StandardError'] === 'socket');
    assert.equal(s['Unit.CollectMode'], 'inactive-or-failed');
    assert.match(s['Service.ExecStart'] ?? '', /rexecd/);
  });
});
