// rexecd under xinetd, for real: Debian's xinetd binary (unpacked from its package,
// never installed: it conflicts with openbsd-inetd) runs the shipped
// etc/xinetd.d/rexec, adjusted only where a test must (this checkout's rexecd, a
// loopback port and address, enabled), in both of its modes:
//   wait = no    one rexecd per connection, the connection on fds 0-2
//   wait = yes   rexecd is given the listening socket on fd 0 and serves every
//                connection itself, as a listener, until --idle-exit without one;
//                xinetd starts it again on the next connection
// each over IPv4 and over IPv6 (the shipped `flags = IPv6`): a login with a stderr
// channel and a refusal, with the logs they must leave.  And what xinetd does not
// do: when it exits, it leaves a "wait" listener running until its idle exit.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { startWorld, freePort, type World } from '../harness/world';
import { glibcClient, latin1, raw, request } from '../harness/clients';
import { NO_SOURCE_LIMITS } from '../harness/launchers';
import { sleep } from '../harness/wait';
import { reap, startXinetd, xinetdService, type Xinetd } from '../harness/xinetd';

const USER = { name: 'xinuser', password: 'xin-pass' };
const ARGS = ['--auth', 'shadow', '--fail-delay', '0.3'];
/** The wait listeners' --idle-exit, seconds. */
const IDLE_EXIT = 2;
type Id = 'nowait4' | 'nowait6' | 'wait4' | 'wait6';
const SERVICES: Record<Id, { bind: '127.0.0.1' | '::1'; ipv6?: boolean; wait: boolean }> = {
  nowait4: { bind: '127.0.0.1', wait: false },
  nowait6: { bind: '::1', ipv6: true, wait: false },
  wait4: { bind: '127.0.0.1', wait: true },
  wait6: { bind: '::1', ipv6: true, wait: true },
};

let w: World<never>;
let xinetd: Xinetd | undefined;
const ports = {} as Record<Id, number>;
before(async () => {
  w = await startWorld({ users: [USER], services: {} });
  const texts = [];
  for (const [id, s] of Object.entries(SERVICES) as [Id, (typeof SERVICES)[Id]][]) {
    ports[id] = await freePort();
    // The listener must not hold back one test address's repeated logins.
    const args = s.wait ? [...ARGS, ...NO_SOURCE_LIMITS, '--idle-exit', String(IDLE_EXIT)] : ARGS;
    texts.push(xinetdService({ id, port: ports[id], bind: s.bind, ipv6: s.ipv6, wait: s.wait, args }));
  }
  xinetd = await startXinetd(w, texts, Object.values(ports));
});
after(async () => {
  const killed = (await xinetd?.end()) ?? [];
  await w?.stop();
  assert.deepEqual(killed, [], 'processes that had to be killed');
});

/** A login with the stderr channel, and a refusal; each leaves its log line. */
async function loginAndRefusal(id: Id): Promise<void> {
  const host = SERVICES[id].bind;
  const ok = await glibcClient({ port: ports[id], host, family: host === '::1' ? 6 : 4, user: USER.name, password: USER.password, command: 'id -un; echo to-stderr >&2' });
  assert.equal(ok.code, 0, `${ok.stderr}\nxinetd: ${xinetd?.log() ?? '(stopped)'}`);
  assert.equal(ok.stdout.toString(), `${USER.name}\n`);
  assert.equal(ok.stderr.toString(), 'to-stderr\n');
  await w.waitLog(new RegExp(`user ${USER.name} from ${host.replace(/\./g, '\\.')}$`));
  const refused = await raw({ port: ports[id], host, steps: [request({ user: USER.name, password: 'wrong', command: 'id' })] });
  assert.equal(latin1(refused.main), '\x01Login incorrect.\n');
  assert.equal(refused.mainClosed, 'eof');
  await w.waitLog(new RegExp(`refused user "${USER.name}" from ${host.replace(/\./g, '\\.')}: `));
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

/** The pids of the listeners that said they listen on the wait service id's port. */
function listeners(id: Id): number[] {
  const { bind } = SERVICES[id];
  const address = bind.includes(':') ? `[${bind}]` : bind;
  const said = new RegExp(`rexecd\\[(\\d+)\\]: listening on ${address.replace(/[.[\]]/g, '\\$&')}:${ports[id]} \\(from inetd\\)`);
  return w.logs().flatMap((l) => {
    const m = said.exec(l.text);
    return m ? [Number(m[1])] : [];
  });
}

async function until(what: string, check: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    assert.ok(Date.now() < end, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('xinetd, wait = no (the shipped file): one rexecd per connection', () => {
  test('IPv4: a login and a refusal', async () => {
    await loginAndRefusal('nowait4');
  });

  test('IPv6 (flags = IPv6, bind = ::1): a login and a refusal', async () => {
    await loginAndRefusal('nowait6');
  });
});

describe('xinetd, wait = yes: rexecd is the listener on the socket xinetd hands it', () => {
  test('IPv4: logins and a refusal, all served by the one listener xinetd started', async () => {
    await loginAndRefusal('wait4');
    await loginAndRefusal('wait4');
    const [listener, ...more] = listeners('wait4');
    assert.ok(listener !== undefined && more.length === 0, `listeners: ${listeners('wait4')}`);
    assert.ok(alive(listener));
  });

  test('after --idle-exit without a connection it leaves; xinetd starts a new one on the next', async () => {
    const [first] = listeners('wait4');
    assert.ok(first !== undefined);
    await until(`listener ${first} to leave`, () => !alive(first), (IDLE_EXIT + 8) * 1000);
    await loginAndRefusal('wait4');
    const started = listeners('wait4');
    assert.equal(started.length, 2, `listeners: ${started}`);
    assert.notEqual(started[1], first);
  });

  test('IPv6 (flags = IPv6, bind = ::1): a login and a refusal', async () => {
    await loginAndRefusal('wait6');
  });

  test('xinetd exiting leaves a wait listener serving until its idle exit, then it leaves with its workers', async () => {
    await loginAndRefusal('wait6');
    const listener = listeners('wait6').at(-1);
    assert.ok(listener !== undefined && xinetd);
    const left = await xinetd.stop();
    xinetd = undefined;
    // Only wait listeners (and their workers) outlive xinetd; the nowait sessions ended.
    assert.ok(left.includes(listener), `left: ${left}`);
    await loginAndRefusal('wait6');
    await until(`listener ${listener} to leave`, () => !alive(listener), (IDLE_EXIT + 8) * 1000);
    await assert.rejects(raw({ port: ports.wait6, host: '::1', steps: [] }), { code: 'ECONNREFUSED' });
    assert.deepEqual(await reap(left), [], 'the listeners\' workers left with them');
  });
});
