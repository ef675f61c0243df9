// The standalone listener (--listen): the same protocol and the same exec as under
// inetd, connections held while their requests arrive, --max-connections, SIGTERM.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { startWorld, freePort, NODE, REXECD } from '../harness/world.mjs';
import { glibcClient, raw, request } from '../harness/clients.mjs';
import { startListener } from '../harness/launchers.mjs';

let w;
before(async () => {
  w = await startWorld({ users: [{ name: 'rxtest', password: 'rxpass', groups: [['rxextra', 4300]] }], services: { unused: [] } });
});
after(() => w?.stop());

const children = (pid) => execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)]).toString().trim().split('\n').filter(Boolean).length;
const rss = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const text = (b) => b.toString('latin1');
const SHELL_SIGNALS = 'while read -r k v; do case $k in SigBlk:|SigIgn:) echo "$k$v";; esac; done < /proc/$$/status';

describe('rexecd --listen', () => {
  let L;
  before(async () => {
    L = await startListener(w, ['--auth', 'shadow', '--fail-delay', '0.3', '--timeout', '3', '--max-connections', '300']);
  });
  after(() => L?.child.kill('SIGTERM'));

  test('prints where it listens and how to connect', () => {
    assert.match(L.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${L.port}, \\[::1\\]:${L.port}`));
    assert.match(L.output(), /try: +rexec -P \d+ -l USER 127\.0\.0\.1 id/);
  });

  test('a login with a stderr channel, over IPv4 and IPv6', async () => {
    for (const host of ['127.0.0.1', '::1']) {
      const r = await glibcClient({ port: L.port, host, user: 'rxtest', password: 'rxpass', command: 'id -un; echo err >&2; echo $RHOST' });
      assert.equal(text(r.stdout), `rxtest\n${host}\n`, text(r.stderr));
      assert.equal(text(r.stderr), 'err\n');
    }
  });

  test('the shell gets what inetd would give it: fds 0-2 only, a clean environment, the groups', async () => {
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: `${SHELL_SIGNALS}; ls /proc/$$/fd; tr '\\0' '\\n' < /proc/$$/environ | cut -d= -f1 | sort | tr '\\n' ' '; id -G` });
    assert.equal(text(r.stdout), `SigBlk:0000000000000000\nSigIgn:0000000000000000\n0\n1\n2\nHOME LOGNAME PATH RHOST SHELL USER ${w.users.rxtest.gid} 4300\n`);
  });

  test('20 MB right after the request reach the command intact (the listener reads nothing past the NUL)', async () => {
    const data = randomBytes(20 * 1024 * 1024);
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'sha256sum', input: data, timeout: 60000 });
    assert.equal(text(r.stdout).split(' ')[0], createHash('sha256').update(data).digest('hex'));
  });

  test('request and stdin in one segment, no stderr channel', async () => {
    const r = await raw({ port: L.port, steps: [Buffer.concat([request({ user: 'rxtest', password: 'rxpass', command: 'cat' }), Buffer.from('same segment\n')]), { end: true }] });
    assert.equal(text(r.main), '\0same segment\n');
  });

  test('diagnostics and refusals as under inetd', async () => {
    assert.equal(text((await raw({ port: L.port, steps: [request({ port: '99', user: 'rxtest', password: 'rxpass', command: 'id' })] })).main), '\x01Bad stderr port.\n');
    assert.equal(text((await raw({ port: L.port, steps: [Buffer.from('\0abcdefghijklmnopq')] })).main), '\x01username too long\n');
    assert.equal(text((await raw({ port: L.port, steps: [request({ port: '1030', user: 'rxtest', password: 'rxpass', command: 'id' })] })).main), "\x01Can't connect to stderr port.\n");
    const bad = await raw({ port: L.port, steps: [request({ user: 'rxtest', password: 'nope', command: 'id' })] });
    assert.equal(text(bad.main), '\x01Login incorrect.\n');
    assert.ok(bad.ms >= 300);
    await w.waitLog(/refused user "rxtest" from 127\.0\.0\.1: bad password/);
  });

  test('a silent client is cut off at the deadline', async () => {
    const r = await raw({ port: L.port, steps: [Buffer.from('\0rxtest\0')], timeout: 10000 });
    assert.equal(r.main.length, 0);
    assert.ok(r.ms >= 2900 && r.ms < 5000, `${r.ms} ms`);
    await w.waitLog(/timeout \(3 s\) waiting for password from 127\.0\.0\.1/);
  });

  test('200 idle connections cost the listener little and start no process', async () => {
    const before = rss(L.pid);
    const kids = children(L.pid);
    const socks = await Promise.all(Array.from({ length: 200 }, () => new Promise((res, rej) => {
      const s = connect({ port: L.port, host: '127.0.0.1' }, () => res(s));
      s.on('error', rej);
    })));
    for (const s of socks) s.write('\0rxte');
    await new Promise((r) => setTimeout(r, 500));
    const grown = rss(L.pid) - before;
    assert.equal(children(L.pid), kids);
    assert.ok(grown < 20 * 1024, `listener grew by ${grown} KiB for 200 idle connections`);
    // and it still serves while they sit there
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo served' });
    assert.equal(text(r.stdout), 'served\n');
    for (const s of socks) s.destroy();
  });
});

describe('--max-connections', () => {
  let L;
  before(async () => {
    L = await startListener(w, ['--auth', 'shadow', '--max-connections', '3', '--timeout', '5']);
  });
  after(() => L?.child.kill('SIGTERM'));

  test('the excess is refused with Try again. and the listener keeps serving', async () => {
    const idle = await Promise.all(Array.from({ length: 3 }, () => new Promise((res) => {
      const s = connect({ port: L.port, host: '127.0.0.1' }, () => res(s));
    })));
    await new Promise((r) => setTimeout(r, 200));
    const excess = await raw({ port: L.port, steps: [request({ user: 'rxtest', password: 'rxpass', command: 'id' })] });
    assert.equal(text(excess.main), '\x01Try again.\n');
    await w.waitLog(/refused 127\.0\.0\.1: 3 connections already \(--max-connections\)/);
    for (const s of idle) s.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo again' });
    assert.equal(text(r.stdout), 'again\n');
  });
});

test('SIGTERM stops accepting and exits; no process of it stays behind', async () => {
  const L = await startListener(w, ['--auth', 'shadow']);
  const workers = execFileSync('ps', ['-o', 'pid=', '--ppid', String(L.pid)]).toString().trim().split('\n').map(Number);
  assert.ok(workers.length >= 1);
  process.kill(L.pid, 'SIGTERM');
  await new Promise((r) => L.child.once('exit', r));
  assert.equal(L.child.exitCode, 0);
  await new Promise((r) => setTimeout(r, 300));
  for (const p of [L.pid, ...workers]) assert.ok(!readdirSync('/proc').includes(String(p)), `pid ${p} still runs`);
  const refused = await new Promise((res) => {
    const s = connect({ port: L.port, host: '127.0.0.1' });
    s.on('error', (e) => res(e.code));
    s.on('connect', () => res('connected'));
  });
  assert.equal(refused, 'ECONNREFUSED');
});

test('run as a normal user, it says what it can and cannot do', async () => {
  const port = await freePort();
  const child = spawn('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', 'env', '-i', NODE, REXECD, '--listen', `127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const end = Date.now() + 10000;
  while (!out.includes('Run it as root') && child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
  assert.match(out, /not running as root \(uid 65534\): rexecd cannot become other users here, so only\s+nobody can log in, and only through PAM/);
});

test('-l under --listen logs each connection once (by the listener)', async () => {
  const L = await startListener(w, ['--auth', 'shadow', '-l']);
  try {
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo once' });
    assert.equal(text(r.stdout), 'once\n');
    await w.waitLog(/user rxtest from 127\.0\.0\.1$/);
    const lines = w.logs().filter((l) => l.text.includes('connection from 127.0.0.1 port '));
    const ports = lines.map((l) => /port (\d+)/.exec(l.text)[1]);
    assert.equal(new Set(ports).size, ports.length, `a connection logged twice: ${lines.map((l) => l.text).join(' | ')}`);
  } finally {
    L.child.kill('SIGTERM');
  }
});
