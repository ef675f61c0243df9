// The listener's per-source limits and penalties (SPEC §5a, after sshd's
// MaxStartups, PerSourceMaxStartups, PerSourcePenalties, PerSourcePenaltyExemptList),
// with real sockets: different sources are different loopback addresses (127.0.0.N,
// every one of them a /32 source by default).  Each test starts its own listener
// with the limits it is about; the harness turns the rest off.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorld, type World } from '../harness/world';
import { latin1 as text, raw, request, waitingClient, type WaitingClient } from '../harness/clients';
import { startListener } from '../harness/launchers';
import { sleep } from '../harness/wait';

const USER = 'srctest';
const PASSWORD = 'src-pass';
const BASE = ['--auth', 'shadow', '--fail-delay', '0', '--timeout', '10'];

let w: World<never>;
before(async () => {
  w = await startWorld({ users: [{ name: USER, password: PASSWORD, method: 'sha512crypt' }], services: {} });
});
after(() => w?.stop());

/** A listener with these limits; stopped after the test. */
async function withListener(args: readonly string[], body: (port: number) => Promise<void>): Promise<void> {
  const L = await startListener(w, { args: [...BASE, ...args] });
  try {
    await body(L.port);
  } finally {
    await L.proc.stop();
  }
}

/** One login attempt from `from`: what the client got on the main connection. */
async function attempt(port: number, from: string, password = PASSWORD): Promise<string> {
  const r = await raw({ port, localAddress: from, steps: [request({ user: USER, password, command: 'echo in' })] });
  return text(r.main);
}
const LOGGED_IN = '\0in\n';
const REFUSED = '\x01Login incorrect.\n';
const TRY_AGAIN = '\x01Try again.\n';

/** A connection from `from` that sends "0\0" and waits: unauthenticated until closed. */
async function idle(port: number, from: string): Promise<WaitingClient> {
  const client = waitingClient(port, '0\0', { localAddress: from });
  await client.connected;
  return client;
}

describe('--per-source-max-startups', () => {
  test('one source holds at most N unauthenticated connections; the next gets Try again., another source is served', () =>
    withListener(['--per-source-max-startups', '3', '--max-connections', '10'], async (port) => {
      const held = await Promise.all([1, 2, 3].map(() => idle(port, '127.0.0.1')));
      await sleep(200);
      assert.equal(await attempt(port, '127.0.0.1'), TRY_AGAIN);
      await w.waitLog(/refused 127\.0\.0\.1: 3 unauthenticated connections from 127\.0\.0\.1\/32 already \(--per-source-max-startups\)/);
      assert.equal(await attempt(port, '127.0.0.2'), LOGGED_IN);
      for (const s of held) s.socket.destroy();
      await sleep(200);
      assert.equal(await attempt(port, '127.0.0.1'), LOGGED_IN);
    }));

  test('--per-source-net-block-size 24: 127.0.0.1 and 127.0.0.2 are one source', () =>
    withListener(['--per-source-max-startups', '2', '--per-source-net-block-size', '24'], async (port) => {
      const held = [await idle(port, '127.0.0.1'), await idle(port, '127.0.0.2')];
      await sleep(200);
      assert.equal(await attempt(port, '127.0.0.3'), TRY_AGAIN);
      await w.waitLog(/2 unauthenticated connections from 127\.0\.0\.0\/24 already/);
      for (const s of held) s.socket.destroy();
    }));
});

describe('--per-source-penalties', () => {
  test('a refused login penalises its source past min: Try again. until it runs out, then forgiven; other sources unaffected', () =>
    withListener(['--per-source-penalties', 'authfail:3s,min:2s,max:30s'], async (port) => {
      assert.equal(await attempt(port, '127.0.0.3', 'wrong'), REFUSED);
      await w.waitLog(/penalty for 127\.0\.0\.3\/32: refused for 3 s \(--per-source-penalties\)/);
      const t0 = performance.now();
      assert.equal(await attempt(port, '127.0.0.3'), TRY_AGAIN, 'the right password does not help while penalised');
      await w.waitLog(/refused 127\.0\.0\.3: penalty: failed authentication, \d s left \(--per-source-penalties\)/);
      assert.equal(await attempt(port, '127.0.0.4'), LOGGED_IN);
      await sleep(3200 - (performance.now() - t0));
      assert.equal(await attempt(port, '127.0.0.3'), LOGGED_IN);
    }));

  test('the defaults forgive a person who mistypes twice', () =>
    withListener(['--per-source-penalties', 'yes'], async (port) => {
      assert.equal(await attempt(port, '127.0.0.5', 'typo1'), REFUSED);
      assert.equal(await attempt(port, '127.0.0.5', 'typo2'), REFUSED);
      assert.equal(await attempt(port, '127.0.0.5'), LOGGED_IN);
    }));

  test('the defaults stop a source that keeps guessing', () =>
    withListener(['--per-source-penalties', 'yes'], async (port) => {
      const answers: string[] = [];
      for (let i = 0; i < 6; i++) answers.push(await attempt(port, '127.0.0.6', `guess${i}`));
      // 5 s a failure, enforced past 15 s: the 4th failure makes it 20 s.
      assert.deepEqual(answers, [REFUSED, REFUSED, REFUSED, REFUSED, TRY_AGAIN, TRY_AGAIN]);
    }));

  test('a request that is not one (bad port), and a silent client at the deadline, count too', () =>
    withListener(['--per-source-penalties', 'noauth:3s,grace-exceeded:3s,min:4s', '--timeout', '1'], async (port) => {
      const bad = await raw({ port, localAddress: '127.0.0.7', steps: [request({ port: '80', user: USER, password: PASSWORD, command: 'id' })] });
      assert.equal(text(bad.main), '\x01Bad stderr port.\n');
      const silent = await raw({ port, localAddress: '127.0.0.7', steps: [Buffer.from('0\0')], timeout: 5000 });
      assert.equal(text(silent.main), '');
      await w.waitLog(/penalty for 127\.0\.0\.7\/32: refused for [45] s/);
      assert.equal(await attempt(port, '127.0.0.7'), TRY_AGAIN);
    }));

  test('--per-source-penalty-exempt-list: an exempt source is never penalised nor limited', () =>
    withListener(['--per-source-penalties', 'authfail:3s,min:2s', '--per-source-max-startups', '1', '--per-source-penalty-exempt-list', '127.0.0.8,127.0.1.0/24'], async (port) => {
      assert.equal(await attempt(port, '127.0.0.8', 'wrong'), REFUSED);
      assert.equal(await attempt(port, '127.0.0.8'), LOGGED_IN);
      const held = [await idle(port, '127.0.1.9'), await idle(port, '127.0.1.9')];
      assert.equal(await attempt(port, '127.0.1.9', 'wrong'), REFUSED);
      assert.equal(await attempt(port, '127.0.1.9'), LOGGED_IN);
      for (const s of held) s.socket.destroy();
    }));

  test('the table is bounded: max-sources:2, overflow:permissive forgets the penalty that runs out soonest', () =>
    withListener(['--per-source-penalties', 'authfail:20s,min:1s,max-sources:2'], async (port) => {
      for (const src of ['127.0.0.10', '127.0.0.11', '127.0.0.12']) assert.equal(await attempt(port, src, 'wrong'), REFUSED);
      assert.equal(await attempt(port, '127.0.0.10'), LOGGED_IN, 'the oldest penalty was forgotten');
      assert.equal(await attempt(port, '127.0.0.11'), TRY_AGAIN);
      assert.equal(await attempt(port, '127.0.0.12'), TRY_AGAIN);
    }));

  test('overflow:deny-all: with the table full, a new source is refused', () =>
    withListener(['--per-source-penalties', 'authfail:20s,min:1s,max-sources:2,overflow:deny-all'], async (port) => {
      for (const src of ['127.0.0.13', '127.0.0.14']) assert.equal(await attempt(port, src, 'wrong'), REFUSED);
      assert.equal(await attempt(port, '127.0.0.15'), TRY_AGAIN);
      await w.waitLog(/refused 127\.0\.0\.15: the penalty table is full \(--per-source-penalties overflow:deny-all\)/);
    }));
});

describe('--max-startups', () => {
  test('at FULL unauthenticated connections every new one is dropped; between START and FULL some are', () =>
    withListener(['--max-startups', '2:50:100', '--per-source-max-startups', 'none'], async (port) => {
      const held = [await idle(port, '127.0.0.20'), await idle(port, '127.0.0.21')];
      await sleep(200);
      // 2 held: each new one is dropped with probability 50 % + 50 % * 0/98.
      const outcomes = { dropped: 0, admitted: 0 };
      for (let i = 0; i < 30; i++) {
        const s = await idle(port, '127.0.0.22');
        await sleep(60);
        outcomes[s.got() === TRY_AGAIN ? 'dropped' : 'admitted']++;
        s.socket.destroy();
        await sleep(30);
      }
      assert.ok(outcomes.dropped > 0 && outcomes.admitted > 0, JSON.stringify(outcomes));
      for (const s of held) s.socket.destroy();
    }));

  test('START alone: START:100:START, all dropped from there', () =>
    withListener(['--max-startups', '2', '--per-source-max-startups', 'none'], async (port) => {
      const held = [await idle(port, '127.0.0.23'), await idle(port, '127.0.0.24')];
      await sleep(200);
      assert.equal(await attempt(port, '127.0.0.25'), TRY_AGAIN);
      await w.waitLog(/refused 127\.0\.0\.25: 2 unauthenticated connections already \(--max-startups\)/);
      for (const s of held) s.socket.destroy();
      await sleep(200);
      assert.equal(await attempt(port, '127.0.0.25'), LOGGED_IN);
    }));
});
