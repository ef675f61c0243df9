// What a hostile client or user can learn or gain (issue 6): whether an account
// exists, from the time a refusal takes (PAM and shadow, default fail delay); and,
// once logged in, anything of root's or of rexecd's: /etc/shadow, a way back to
// uid 0, groups other than the user's own, capabilities, rexecd's environment, the
// launcher's session.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { startWorld, SHIPPED_PAM_SERVICE, type Service, type UserSpec, type World } from '../harness/world';
import { NODE, REXECD } from '../harness/paths';
import { latin1 as text, raw, request } from '../harness/clients';
import { SHELL_ENVIRONMENT } from '../harness/commands';
import { listenEphemeral } from '../harness/sockets';

const USER = { name: 'rxpriv', password: 'rxpriv-pass', groups: [['rxgrp1', 4401], ['rxgrp2', 4402]] } as const satisfies UserSpec;
// What inetd's own environment might hold: none of it may reach the command.
const LEAKY_ENV = ['NODE_OPTIONS=--max-old-space-size=256', 'NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt', 'LISTEN_PID=1', 'LISTEN_FDS=1', 'LISTEN_FDNAMES=rexec', 'REXECD_TEST_SECRET=leaked'];
const leaky = (args: readonly string[]): Service => ({ program: '/usr/bin/env', args: [...LEAKY_ENV, NODE, REXECD, ...args] });
const SERVICES = {
  // The default fail delay (2 s) for both methods.
  pam: [],
  shadow: ['--auth', 'shadow'],
  leakyShadow: leaky(['--auth', 'shadow', '--fail-delay', '0']),
  leakyPam: leaky(['--fail-delay', '0']),
};
type ServiceName = keyof typeof SERVICES;

let w: World<ServiceName>;
before(async () => {
  w = await startWorld({ users: [USER], pam: { rexec: SHIPPED_PAM_SERVICE }, services: SERVICES });
});
after(() => w?.stop());

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describe('enumeration: an unknown user and a wrong password take the same time', () => {
  test('default fail delay, PAM and shadow: medians of 20 each, interleaved, within 5 %', async () => {
    const ROUNDS = 20;
    const METHODS = ['pam', 'shadow'] as const;
    const kinds: { method: (typeof METHODS)[number]; who: 'unknown' | 'wrong' }[] = [];
    for (const method of METHODS) for (const who of ['unknown', 'wrong'] as const) kinds.push({ method, who });
    // Rounds of 8 connections at once (2 of each kind, in alternating order): the
    // 2 s delay dominates, and load from the batch falls on every kind alike.
    const times = { pam: { unknown: [] as number[], wrong: [] as number[] }, shadow: { unknown: [] as number[], wrong: [] as number[] } };
    const texts = new Set<string>();
    for (let round = 0; round < ROUNDS / 2; round++) {
      const order = round % 2 ? [...kinds].reverse() : kinds;
      const batch = [...order, ...order].map((k) =>
        raw({ port: w.ports[k.method], steps: [request({ user: k.who === 'unknown' ? `nouser${round}` : USER.name, password: 'not-the-password', command: 'id' })], timeout: 10000 }).then((r) => {
          texts.add(text(r.main));
          times[k.method][k.who].push(r.ms);
        }),
      );
      await Promise.all(batch);
    }
    assert.deepEqual([...texts], ['\x01Login incorrect.\n']);
    const report: Record<string, { unknown: number; wrong: number; diffPercent: number }> = {};
    for (const method of METHODS) {
      const unknown = median(times[method].unknown);
      const wrong = median(times[method].wrong);
      const diff = Math.abs(unknown - wrong) / Math.min(unknown, wrong);
      report[method] = { unknown: Math.round(unknown), wrong: Math.round(wrong), diffPercent: Number((diff * 100).toFixed(2)) };
      assert.ok(unknown >= 2000 && wrong >= 2000, `${method}: refused before the fail delay: ${unknown} / ${wrong} ms`);
      assert.ok(diff < 0.05, `${method}: unknown ${unknown} ms vs wrong password ${wrong} ms (${(diff * 100).toFixed(1)} %)`);
    }
    console.log(`# enumeration medians (ms, n=${ROUNDS} each): ${JSON.stringify(report)}`);
  });
});

describe('privileges of the command', () => {
  const run = (service: ServiceName, command: string) => raw({ port: w.ports[service], steps: [request({ user: USER.name, password: USER.password, command })] });

  test('cannot read /etc/shadow', async () => {
    const r = await run('leakyShadow', 'cat /etc/shadow 2>&1; echo "status $?"');
    assert.match(text(r.main), /^\0cat: \/etc\/shadow: Permission denied\nstatus 1\n$/);
  });

  test('cannot become root again: setuid(0), setgid(0) and setresuid(0) fail with EPERM', async () => {
    const r = await run('leakyShadow', `perl -MPOSIX -e '
      print POSIX::setuid(0) ? "setuid regained\\n" : "setuid: $!\\n";
      print POSIX::setgid(0) ? "setgid regained\\n" : "setgid: $!\\n";
      $> = 0; print $> == 0 ? "seteuid regained\\n" : "seteuid: $!\\n";'`);
    assert.equal(text(r.main), '\0setuid: Operation not permitted\nsetgid: Operation not permitted\nseteuid: Operation not permitted\n');
  });

  test('real, effective, saved and filesystem ids are the user\'s; no capability at all', async () => {
    const r = await run('leakyShadow', 'while read -r k a b c d; do case $k in Uid:|Gid:) echo "$k $a $b $c $d";; Cap*) echo "$k $a";; esac; done < /proc/$$/status');
    const { uid, gid } = w.user(USER.name);
    const zero = '0000000000000000';
    const lines = text(r.main).slice(1).trim().split('\n');
    assert.ok(lines.includes(`Uid: ${uid} ${uid} ${uid} ${uid}`), lines.join('\n'));
    assert.ok(lines.includes(`Gid: ${gid} ${gid} ${gid} ${gid}`), lines.join('\n'));
    for (const cap of ['CapInh:', 'CapPrm:', 'CapEff:', 'CapAmb:']) assert.ok(lines.includes(`${cap} ${zero}`), `${cap} in ${lines.join('\n')}`);
  });

  for (const service of ['leakyShadow', 'leakyPam'] as const) {
    test(`${service === 'leakyPam' ? 'PAM' : 'shadow'}: exactly the user's groups, as the world's group file has them`, async () => {
      const r = await run(service, 'id -G');
      const want = w.nsenter('id', ['-G', USER.name]).toString().trim().split(' ').map(Number).sort((a, b) => a - b);
      const got = text(r.main).slice(1).trim().split(' ').map(Number).sort((a, b) => a - b);
      assert.deepEqual(got, want);
      assert.deepEqual(want, [w.user(USER.name).gid, 4401, 4402]);
    });

    test(`${service === 'leakyPam' ? 'PAM' : 'shadow'}: nothing of inetd's or rexecd's environment (NODE_*, LISTEN_*, others) reaches the command`, async () => {
      const r = await run(service, SHELL_ENVIRONMENT);
      const env = text(r.main).slice(1).trim().split('\n');
      const names = env.map((e) => e.split('=')[0]!);
      for (const bad of LEAKY_ENV.map((e) => e.split('=')[0]!)) assert.ok(!names.includes(bad), `${bad} leaked: ${env.join(' ')}`);
      assert.ok(names.every((n) => !/^(NODE_|LISTEN_|REXECD)/.test(n)), env.join(' '));
      const home = w.user(USER.name).home;
      for (const e of [`HOME=${home}`, `USER=${USER.name}`, `LOGNAME=${USER.name}`, 'SHELL=/bin/sh', 'PATH=/usr/local/bin:/usr/bin:/bin', 'RHOST=127.0.0.1']) assert.ok(env.includes(e), `${e} missing: ${env.join(' ')}`);
      if (service === 'leakyShadow') assert.equal(env.length, 6, env.join(' '));
    });
  }

  test('the command leads its own session even when the launcher made none (SPEC §4 setsid)', async () => {
    // A launcher that, unlike inetd, does not call setsid(): it accepts and starts
    // rexecd (inside the world's namespace) with the connection on fds 0-2, in the
    // test's own session.
    const children: ChildProcess[] = [];
    const server = createServer({ pauseOnConnect: true }, (sock) => {
      const child = spawn('nsenter', w.inside([NODE, REXECD, '--auth', 'shadow', '--fail-delay', '0']), { stdio: [sock, sock, sock], env: {} });
      children.push(child);
      child.on('error', () => {});
      sock.destroy();
    });
    const port = await listenEphemeral(server);
    try {
      const r = await raw({ port, steps: [request({ user: USER.name, password: USER.password, command: 'echo $$; ps -o sid= -o pgid= -p $$' })] });
      const [pid, ids = ''] = text(r.main).slice(1).trim().split('\n');
      assert.equal(r.main[0], 0, text(r.main));
      assert.deepEqual(ids.trim().split(/\s+/), [pid, pid], 'session and process group are the shell\'s own');
    } finally {
      server.close();
      for (const c of children) if (c.exitCode === null) c.kill();
    }
  });
});
