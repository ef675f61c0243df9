// The listener given a launcher's listening socket (protocol.md §1.4, §1.5): openbsd-inetd "wait"
// (the socket on fd 0) and systemd Accept=no (systemd-socket-activate without
// --accept: fd 3, LISTEN_FDS=1).  Logins and refusals, what the command is handed
// (no listening socket, no LISTEN_*, the normal CPU priority), the workers (no
// listening socket either), the idle exit and the launcher starting rexecd again,
// SIGTERM with a session running; and a listener out of descriptors that keeps
// serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { startWorld, freePort, type UserSpec, type World } from '../harness/world';
import { NODE, REXECD } from '../harness/paths';
import { glibcClient, latin1 as text, raw, request, waitingClient, type WaitingClient } from '../harness/clients';
import { socketActivate, NO_SOURCE_LIMITS, type Launched } from '../harness/launchers';
import { childPids as childrenOf, startWhenReady, type Watched } from '../harness/processes';
import { sleep, waitFor } from '../harness/wait';

const USER = { name: 'pooltest', password: 'pool-pass', groups: [['poolx', 4310]] } as const satisfies UserSpec;
const FAST = ['--auth', 'shadow', '--fail-delay', '0.3', '--timeout', '5', ...NO_SOURCE_LIMITS];

/** A process's name and nice value (/proc/PID/stat); undefined once it is gone. */
function stat(pid: number): { comm: string; nice: number } | undefined {
  try {
    const line = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = line.slice(line.lastIndexOf(')') + 2).split(' ');
    return { comm: line.slice(line.indexOf('(') + 1, line.lastIndexOf(')')), nice: Number(fields[16]) };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** The socket inodes a process holds, by fd. */
function sockets(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode !== undefined) out[fd] = inode;
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Polls check() until it holds (8 s at most). */
const until = <T>(what: string, check: () => T | undefined | false, ms = 8000): Promise<T> => waitFor(check, `timed out waiting for ${what}`, ms);

// The command shows its fds, its environment's names, its nice value and its groups.
// The shell's fds are listed by ls run alone: in a pipeline the shell may still
// hold the pipe's ends when ls looks.
const PROBE = "ls /proc/$$/fd; echo ==; env | cut -d= -f1 | sort | tr '\\n' ' '; echo; cut -d' ' -f19 /proc/$$/stat; id -G";

function assertCommandWorld(stdout: Buffer, gid: number): void {
  const [fdList = '', rest = ''] = text(stdout).split('==\n');
  const [env, nice, groups] = rest.split('\n');
  assert.equal(fdList.trim().split('\n').join(' '), '0 1 2', 'the command holds fds 0-2 only');
  assert.equal(env?.trim(), 'HOME LOGNAME PATH PWD RHOST SHELL USER', 'no LISTEN_* or NODE_* variable');
  assert.equal(nice, '0', 'the command runs at the normal priority, not the waiting workers\' 19');
  assert.equal(groups, `${gid} 4310`);
}

describe('openbsd-inetd "wait": the listening socket on fd 0', () => {
  let w: World<'wait' | 'idle' | 'mistake'>;
  before(async () => {
    w = await startWorld({
      users: [USER],
      services: {
        wait: { args: [...FAST, '--idle-exit', '30'], wait: true },
        idle: { args: [...FAST, '--idle-exit', '1'], wait: true },
        // A mistake: --listen on an inetd line.
        mistake: { args: [...FAST, '--listen', '127.0.0.1:1'] },
      },
    });
  });
  after(() => w?.stop());

  /** The listener inetd started for a service: inetd's child running rexecd. */
  const listenerOf = () => until('the listener', () => childrenOf(w.inetdPid).find((pid) => /node/.test(stat(pid)?.comm ?? '')));

  test('logins over IPv4 and IPv6, with and without a stderr channel; the command gets what inetd would give it', async () => {
    for (const [host, family] of [['127.0.0.1', 4], ['::1', 6]] as const) {
      const r = await glibcClient({ port: w.ports.wait, host, family, user: 'pooltest', password: 'pool-pass', command: `${PROBE}; echo err >&2` });
      assert.equal(r.code, 0, text(r.stderr));
      assertCommandWorld(r.stdout, w.user('pooltest').gid);
      assert.equal(text(r.stderr), 'err\n');
    }
    const merged = await glibcClient({ port: w.ports.wait, user: 'pooltest', password: 'pool-pass', command: 'echo out; echo err >&2', stderrChannel: false });
    assert.equal(text(merged.stdout), 'out\nerr\n');
    await w.waitLog(/user pooltest from ::1$/);
  });

  test('--listen on a launcher\'s line is a configuration error: Try again. and the reason in the log', async () => {
    const r = await raw({ port: w.ports.mistake, steps: [request({ user: 'pooltest', password: 'pool-pass', command: 'id' })] });
    assert.equal(text(r.main), '\x01Try again.\n');
    await w.waitLog(/configuration error: --listen, but a connection came from the launcher \(drop --listen from the inetd or systemd line\)/);
  });

  test('a refusal: Login incorrect. after the fail delay, the real reason in the log', async () => {
    const r = await raw({ port: w.ports.wait, steps: [request({ user: 'pooltest', password: 'wrong', command: 'id' })] });
    assert.equal(text(r.main), '\x01Login incorrect.\n');
    assert.ok(r.ms >= 300, `${r.ms} ms`);
    await w.waitLog(/refused user "pooltest" from 127\.0\.0\.1: bad password/);
  });

  test('the listening socket reaches neither a waiting worker nor a session', async () => {
    const listener = await listenerOf();
    const listening = sockets(listener)['0'];
    assert.ok(listening, 'the listener holds the listening socket on fd 0');
    const workers = await until('a ready worker', () => childrenOf(listener).length > 0 && childrenOf(listener));
    for (const worker of workers) assert.ok(!Object.values(sockets(worker)).includes(listening), `worker ${worker} holds the listening socket`);
    assert.ok(workers.every((pid) => stat(pid)?.nice === 19), 'waiting workers start at nice 19');
    const session = glibcClient({ port: w.ports.wait, user: 'pooltest', password: 'pool-pass', command: 'sleep 1' });
    const shell = await until('the session', () => childrenOf(listener).find((pid) => stat(pid)?.comm === 'sh'));
    assert.ok(!Object.values(sockets(shell)).includes(listening), 'the shell holds the listening socket');
    assert.equal((await session).code, 0);
  });

  test('SIGTERM: the listener exits 0 and leaves a running session alone; inetd starts rexecd again', async () => {
    const listener = await listenerOf();
    const session = glibcClient({ port: w.ports.wait, user: 'pooltest', password: 'pool-pass', command: 'sleep 1.5; echo survived' });
    await until('the session', () => childrenOf(listener).some((pid) => stat(pid)?.comm === 'sh'));
    process.kill(listener, 'SIGTERM');
    await until('the listener to exit', () => stat(listener) === undefined);
    const r = await session;
    assert.equal(text(r.stdout), 'survived\n');
    const again = await glibcClient({ port: w.ports.wait, user: 'pooltest', password: 'pool-pass', command: 'echo again' });
    assert.equal(text(again.stdout), 'again\n');
  });

  test('--idle-exit: after a second without connections the listener exits (and logs it); the next connection starts it again', async () => {
    const first = await glibcClient({ port: w.ports.idle, user: 'pooltest', password: 'pool-pass', command: 'echo one' });
    assert.equal(text(first.stdout), 'one\n');
    await w.waitLog(/no connection for 1 s \(--idle-exit\): exiting; the inetd socket starts rexecd again/, 8000);
    const cmdline = (pid: number): string => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      } catch {
        return ''; // gone meanwhile
      }
    };
    const idleListeners = () => childrenOf(w.inetdPid).filter((pid) => cmdline(pid).includes('--idle-exit\x001\x00'));
    await until('no listener for the idle service', () => idleListeners().length === 0);
    const second = await glibcClient({ port: w.ports.idle, user: 'pooltest', password: 'pool-pass', command: 'echo two' });
    assert.equal(text(second.stdout), 'two\n');
  });
});

describe('systemd Accept=no: the listening socket on fd 3', () => {
  let w: World<never>;
  let sd: Launched;
  before(async () => {
    w = await startWorld({ users: [USER], services: {} });
    sd = await socketActivate(w, { accept: false, args: [...FAST, '--idle-exit', '2'], setenv: { REXECD_TEST_MARKER: 'leaked' } });
  });
  after(async () => {
    await sd?.proc.stop();
    await w?.stop();
  });

  test('a login: the command has fds 0-2, no LISTEN_* variable, the normal priority; a refusal', async () => {
    const r = await glibcClient({ port: sd.port, user: 'pooltest', password: 'pool-pass', command: PROBE });
    assert.equal(r.code, 0, `${text(r.stderr)} ${sd.proc.output()}`);
    assertCommandWorld(r.stdout, w.user('pooltest').gid);
    const bad = await raw({ port: sd.port, steps: [request({ user: 'pooltest', password: 'wrong', command: 'id' })] });
    assert.equal(text(bad.main), '\x01Login incorrect.\n');
    await w.waitLog(/listening on 127\.0\.0\.1:\d+ \(from systemd\)/);
  });

  test('--idle-exit ends the listener (systemd would start it again on the next connection)', async () => {
    await w.waitLog(/no connection for 2 s \(--idle-exit\): exiting; the systemd socket starts rexecd again/, 10000);
    await until('the listener to exit', () => !sd.proc.running);
    // A failed exit would count against the service (and its start limit) in systemd.
    assert.equal(sd.proc.child.exitCode, 0);
  });
});

describe('out of descriptors', () => {
  let w: World<never>;
  before(async () => {
    w = await startWorld({ users: [USER], services: {} });
  });
  after(() => w?.stop());

  /** rexecd --listen under `ulimit -n` inside the world. */
  async function listener(nofile: number, args: readonly string[]): Promise<{ port: number; proc: Watched }> {
    const port = await freePort();
    const proc = await startWhenReady('nsenter', w.inside(['sh', '-c', `ulimit -n ${nofile} && exec env -i "$@"`, 'sh', NODE, REXECD, '--listen', `127.0.0.1:${port}`, ...FAST, ...args]), 'listening on', 8000);
    return { port, proc };
  }

  /** count connections that send "0\0" and then nothing (none waits to be connected); after 1.5 s, them and what each got. */
  async function flood(port: number, count: number): Promise<WaitingClient[]> {
    const socks = Array.from({ length: count }, () => waitingClient(port, '0\0'));
    await sleep(1500);
    return socks;
  }

  test('--max-connections beyond RLIMIT_NOFILE is fitted to it, said on stderr and in the log', async () => {
    const L = await listener(256, ['--max-connections', '2000']);
    try {
      assert.match(L.proc.output(), /--max-connections 2000 needs 4064 descriptors, but RLIMIT_NOFILE allows 256 \(hard limit 256\): serving at most 96 connections at once/);
      await w.waitLog(/serving at most 96 connections at once/);
      const socks = await flood(L.port, 300);
      const refused = socks.filter((s) => s.got() === '\x01Try again.\n').length;
      assert.ok(refused >= 300 - 96, `${refused} of 300 refused`);
      for (const s of socks) s.socket.destroy();
      await sleep(300);
      const r = await glibcClient({ port: L.port, user: 'pooltest', password: 'pool-pass', command: 'echo still' });
      assert.equal(text(r.stdout), 'still\n');
    } finally {
      await L.proc.stop();
    }
  });

  test('accept failing with EMFILE: the listener backs off, logs once, answers the waiting with Try again., and serves again afterwards', async () => {
    const L = await listener(8192, ['--max-connections', '2000']);
    try {
      // Lower the limit under the running listener: its next accepts fail with EMFILE.
      execFileSync('prlimit', ['--pid', String(L.proc.pid), '--nofile=100:8192']);
      const socks = await flood(L.port, 400);
      assert.ok(L.proc.running, `the listener died: ${L.proc.output()}`);
      const logs = w.logs();
      const emfile = logs.filter((l) => /accept4: Too many open files on 127\.0\.0\.1:\d+: pausing accepts/.test(l.text));
      assert.ok(emfile.length >= 1 && emfile.length <= 2, `EMFILE logged ${emfile.length} times: ${logs.slice(-5).map((l) => l.text).join(' | ')} ${readdirSync(`/proc/${L.proc.pid}/fd`).length} fds`);
      assert.ok(socks.some((s) => s.got() === '\x01Try again.\n'), 'the reserve descriptor let some waiting client hear Try again.');
      for (const s of socks) s.socket.destroy();
      execFileSync('prlimit', ['--pid', String(L.proc.pid), '--nofile=8192:8192']);
      await sleep(1500);
      const r = await glibcClient({ port: L.port, user: 'pooltest', password: 'pool-pass', command: 'echo recovered' });
      assert.equal(text(r.stdout), 'recovered\n', L.proc.output());
    } finally {
      await L.proc.stop();
    }
  });
});
