// The standalone listener (--listen): the same protocol and the same exec as under
// inetd, connections held while their requests arrive, --max-connections, SIGTERM.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, freePort, type World } from '../harness/world';
import { DEPLOYED, DIST, NODE } from '../harness/paths';
import { glibcClient, latin1 as text, raw, request } from '../harness/clients';
import { SHELL_SIGNALS } from '../harness/commands';
import { startListener, type Launched } from '../harness/launchers';
import { Watched, childPids, exited, memoryKb } from '../harness/processes';
import { dial } from '../harness/sockets';
import { sleep } from '../harness/wait';

let w: World<'unused'>;
before(async () => {
  w = await startWorld({ users: [{ name: 'rxtest', password: 'rxpass', groups: [['rxextra', 4300]] }], services: { unused: [] } });
});
after(() => w?.stop());

/** rexecd --listen on 127.0.0.1 and ::1 inside the world's namespace, with args. */
const listener = (args: readonly string[]): Promise<Launched> => startListener(w, { args });
const rss = (pid: number): number => memoryKb(pid, 'VmRSS') ?? assert.fail(`pid ${pid} is gone`);

describe('rexecd --listen', () => {
  let L: Launched;
  before(async () => {
    L = await listener(['--auth', 'shadow', '--fail-delay', '0.3', '--timeout', '3', '--max-connections', '300']);
  });
  after(() => L?.proc.stop());

  test('prints where it listens and how to connect', () => {
    assert.match(L.proc.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${L.port}, \\[::1\\]:${L.port}`));
    assert.match(L.proc.output(), /try: +rexec -P \d+ -l USER 127\.0\.0\.1 id/);
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
    assert.equal(text(r.stdout), `SigBlk:0000000000000000\nSigIgn:0000000000000000\n0\n1\n2\nHOME LOGNAME PATH RHOST SHELL USER ${w.user('rxtest').gid} 4300\n`);
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
    const before = rss(L.proc.pid);
    const kids = childPids(L.proc.pid).length;
    const socks = await Promise.all(Array.from({ length: 200 }, () => dial(L.port)));
    for (const s of socks) s.write('\0rxte');
    await sleep(500);
    const grown = rss(L.proc.pid) - before;
    assert.equal(childPids(L.proc.pid).length, kids);
    assert.ok(grown < 20 * 1024, `listener grew by ${grown} KiB for 200 idle connections`);
    // and it still serves while they sit there
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo served' });
    assert.equal(text(r.stdout), 'served\n');
    for (const s of socks) s.destroy();
  });
});

describe('--max-connections', () => {
  let L: Launched;
  before(async () => {
    L = await listener(['--auth', 'shadow', '--max-connections', '3', '--timeout', '5']);
  });
  after(() => L?.proc.stop());

  test('the excess is refused with Try again. and the listener keeps serving', async () => {
    const idle = await Promise.all(Array.from({ length: 3 }, () => dial(L.port)));
    await sleep(200);
    const excess = await raw({ port: L.port, steps: [request({ user: 'rxtest', password: 'rxpass', command: 'id' })] });
    assert.equal(text(excess.main), '\x01Try again.\n');
    await w.waitLog(/refused 127\.0\.0\.1: 3 connections already \(--max-connections\)/);
    for (const s of idle) s.destroy();
    await sleep(300);
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo again' });
    assert.equal(text(r.stdout), 'again\n');
  });
});

test('SIGTERM stops accepting and exits; no process of it stays behind', async () => {
  const L = await listener(['--auth', 'shadow']);
  const workers = childPids(L.proc.pid);
  assert.ok(workers.length >= 1);
  process.kill(L.proc.pid, 'SIGTERM');
  await exited(L.proc.child);
  assert.equal(L.proc.child.exitCode, 0);
  await sleep(300);
  for (const p of [L.proc.pid, ...workers]) assert.ok(!readdirSync('/proc').includes(String(p)), `pid ${p} still runs`);
  const refused = await new Promise((res) => {
    const s = connect({ port: L.port, host: '127.0.0.1' });
    s.on('error', (e: NodeJS.ErrnoException) => res(e.code));
    s.on('connect', () => res('connected'));
  });
  assert.equal(refused, 'ECONNREFUSED');
});

test('run as a normal user, it says what it can and cannot do', async () => {
  // uid 65534 must reach node and rexecd wherever the checkout is (a fresh root's
  // /root is mode 700): a copy of the deployed files, and node bind-mounted in a
  // private mount namespace, in a directory anyone can read.
  const dir = mkdtempSync(join(tmpdir(), 'rexecd-nobody-'));
  try {
    for (const file of DEPLOYED) cpSync(join(DIST, file), join(dir, file), { recursive: true });
    writeFileSync(join(dir, 'node'), '');
    // Readable by all, whatever the umask made of the copies.
    execFileSync('chmod', ['-R', 'a+rX', dir]);
    const port = await freePort();
    const asNobody = ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', 'env', '-i', join(dir, 'node'), join(dir, 'rexecd.cjs'), '--listen', `127.0.0.1:${port}`];
    const rexecd = new Watched('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', NODE, join(dir, 'node'), ...asNobody]);
    await rexecd.waitFor('Run it as root');
    await rexecd.stop();
    assert.match(rexecd.output(), /not running as root \(uid 65534\): rexecd cannot become other users here, so only\s+nobody can log in, and only through PAM/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-l under --listen logs each connection once (by the listener)', async () => {
  const L = await listener(['--auth', 'shadow', '-l']);
  try {
    const r = await glibcClient({ port: L.port, user: 'rxtest', password: 'rxpass', command: 'echo once' });
    assert.equal(text(r.stdout), 'once\n');
    await w.waitLog(/user rxtest from 127\.0\.0\.1$/);
    const lines = w.logs().filter((l) => l.text.includes('connection from 127.0.0.1 port '));
    const ports = lines.map((l) => /port (\d+)/.exec(l.text)?.[1]);
    assert.equal(new Set(ports).size, ports.length, `a connection logged twice: ${lines.map((l) => l.text).join(' | ')}`);
  } finally {
    await L.proc.stop();
  }
});
