// The rexec client end to end, over real sockets: against our rexecd and Debian's C
// in.rexecd under openbsd-inetd (stdout/stderr apart, merged with -e, stdin, IPv6,
// 100 MB each way with bounded memory, refusals), then credentials (netrc, the
// environment, the prompt on a pseudo-terminal) and the protocol's order and the
// stderr listener against a scripted server.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, freePort, type World } from '../harness/world';
import { latin1 as text } from '../harness/clients';
import { runRexec, runOnPty, type RexecOptions, type PtyOptions } from '../harness/rexec-cli';
import { dial, hostPort, listenEphemeral } from '../harness/sockets';
import { sleep } from '../harness/wait';

const USER = 'rxcli';
const PASSWORD = 'wonder-7';
const BIG = 100 * 1000 * 1000;
type ServerName = 'ours' | 'c';
let w: World<ServerName>;
let home: string; // a HOME for the client, with or without a .netrc
let bigHash: string;
let idleRssKb: number;

before(async () => {
  w = await startWorld({
    users: [{ name: USER, password: PASSWORD }],
    services: { ours: ['--fail-delay', '0.3'], c: { program: '/usr/sbin/in.rexecd', args: [] } },
    etc: { hosts: '127.0.0.1 localhost\n::1 localhost ip6-localhost\n' },
  });
  home = mkdtempSync(join(tmpdir(), 'rexec-home-'));
  // 100 MB of noise in the user's home, for both directions.
  const big = randomBytes(BIG);
  bigHash = createHash('sha256').update(big).digest('hex');
  writeFileSync(join(w.user(USER).home, 'big.bin'), big, { mode: 0o644 });
  writeFileSync(join(home, 'big.bin'), big);
  // The client's own footprint, idle, to compare the transfers with.
  const idle = await rexec('ours', ['sleep 0.6']);
  assert.equal(idle.code, 0, idle.stderr.toString());
  idleRssKb = idle.peakRssKb;
});
after(async () => {
  await w?.stop();
  if (home) rmSync(home, { recursive: true, force: true });
});

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: home, ...extra });
/** rexec -l USER -p PASSWORD [opts] 127.0.0.1:PORT command */
function rexec(server: ServerName, command: readonly string[], { opts = [], host = '127.0.0.1', ...o }: Omit<RexecOptions, 'args'> & { opts?: readonly string[]; host?: string } = {}) {
  return runRexec({ args: ['-l', USER, '-p', PASSWORD, ...opts, hostPort(host, w.ports[server]), ...command], env: env(), ...o });
}

for (const server of ['ours', 'c'] as const) {
  describe(`against ${server === 'ours' ? 'our rexecd' : "Debian's C in.rexecd"}`, () => {
    test('stdout and stderr stay apart; COMMAND words are joined by spaces', async () => {
      const r = await rexec(server, ['echo', 'out;', 'echo err >&2;', 'id', '-un']);
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), `out\n${USER}\n`);
      assert.equal(text(r.stderr), 'err\n');
    });

    test('-e: no stderr channel, the server merges stderr into stdout', async () => {
      const r = await rexec(server, ['echo out; echo err >&2; ls /nonexistent-dir'], { opts: ['-e'] });
      assert.equal(r.code, 0, text(r.stderr));
      assert.match(text(r.stdout), /^out\nerr\nls: cannot access '\/nonexistent-dir': No such file or directory\n$/);
      assert.equal(text(r.stderr), '');
    });

    test('stdin is relayed, and its end reaches the command (shutdown)', async () => {
      const r = await rexec(server, ['tr a-z A-Z; echo end'], { input: 'abc\ndef\n' });
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), 'ABC\nDEF\nend\n');
    });

    test('-n: the command reads end-of-file at once though our stdin stays open', async () => {
      const r = await rexec(server, ['cat; echo eof'], { opts: ['-n'], stdin: 'pipe', holdStdin: true });
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), 'eof\n');
    });

    test('a command that leaves its input unread: its output is not lost to the reset', async () => {
      // The server's kernel resets the connection when the command exits with input
      // unread; a client that dies on the failed write loses what was still queued.
      const lines = Buffer.from(Array.from({ length: 400000 }, (_, i) => `${i + 1}\n`).join(''));
      for (const [command, expected] of [['echo hi', 'hi\n'], ['head -1', '1\n'], ['head -c 3', '1\n2']] as const) {
        const r = await rexec(server, [command], { input: lines });
        assert.equal(r.code, 0, text(r.stderr));
        assert.equal(text(r.stdout), expected, command);
      }
    });

    test('our stdout closed (| head): exit 141 quietly; a full disk: exit 2, said', async () => {
      const piped = await rexec(server, ['yes'], { onSpawn: (c) => c.stdout?.once('data', () => c.stdout?.destroy()) });
      assert.equal(piped.code, 141);
      assert.equal(text(piped.stderr), '');
      const full = openSync('/dev/full', 'w');
      const r = await rexec(server, ['echo hello'], { stdoutFd: full });
      closeSync(full);
      assert.equal(r.code, 2);
      assert.equal(text(r.stderr), 'rexec: writing the output: No space left on device\n');
    });

    test('IPv6: ::1, with the stderr channel dialled back over IPv6', async () => {
      const r = await rexec(server, ['echo out; echo err >&2'], { host: '::1' });
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), 'out\n');
      assert.equal(text(r.stderr), 'err\n');
      const six = await runRexec({ args: ['-6', '-l', USER, '-p', PASSWORD, '-P', String(w.ports[server]), '::1', 'echo six'], env: env() });
      assert.equal(text(six.stdout), 'six\n');
    });

    test('100 MB down: checksum matches, memory stays bounded while our reader stalls', async () => {
      const r = await rexec(server, ['cat big.bin'], { hashStdout: true, pauseStdout: 1000 });
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(r.stdoutBytes, BIG);
      assert.equal(r.sha256, bigHash);
      assert.ok(r.peakRssKb < idleRssKb + 16 * 1024, `peak RSS ${r.peakRssKb} kB, idle ${idleRssKb} kB`);
    });

    test('100 MB up: checksum matches, memory stays bounded while the command stalls', async () => {
      const r = await rexec(server, ['sleep 1; sha256sum'], { input: createReadStream(join(home, 'big.bin')) });
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), `${bigHash}  -\n`);
      assert.ok(r.peakRssKb < idleRssKb + 16 * 1024, `peak RSS ${r.peakRssKb} kB, idle ${idleRssKb} kB`);
    });

    test('a wrong password: exit 1 and the server says why (or is silent)', async () => {
      const r = await runRexec({ args: ['-l', USER, '-p', 'not-it', `127.0.0.1:${w.ports[server]}`, 'echo no'], env: env() });
      assert.equal(r.code, 1);
      assert.equal(text(r.stdout), '');
      if (server === 'ours') assert.equal(text(r.stderr), 'Login incorrect.\n');
      // in.rexecd closes without a byte after a failed PAM login.
      else assert.equal(text(r.stderr), 'rexec: 127.0.0.1 closed the connection without an answer: the login was probably refused\n');
    });
  });
}

describe('credentials', () => {
  const target = () => `127.0.0.1:${w.ports.ours}`;
  const netrc = (content: string, mode = 0o600) => {
    writeFileSync(join(home, '.netrc'), content);
    chmodSync(join(home, '.netrc'), mode);
  };
  after(() => rmSync(join(home, '.netrc'), { force: true }));

  test('~/.netrc gives user and password for the machine', async () => {
    netrc(`machine elsewhere login nobody password nothing\nmachine 127.0.0.1 login ${USER} password ${PASSWORD}\n`);
    const r = await runRexec({ args: [target(), 'id -un'], env: env() });
    assert.equal(r.code, 0, text(r.stderr));
    assert.equal(text(r.stdout), `${USER}\n`);
  });

  test('~/.netrc default entry, over IPv6', async () => {
    netrc(`machine 127.0.0.1 login nobody password nothing\ndefault login ${USER} password ${PASSWORD}\n`);
    const r = await runRexec({ args: [`[::1]:${w.ports.c}`, 'id -un'], env: env() });
    assert.equal(r.code, 0, text(r.stderr));
    assert.equal(text(r.stdout), `${USER}\n`);
  });

  test('~/.netrc readable by others is refused before connecting', async () => {
    netrc(`machine 127.0.0.1 login ${USER} password ${PASSWORD}\n`, 0o644);
    const r = await runRexec({ args: [target(), 'id -un'], env: env() });
    assert.equal(r.code, 2);
    assert.equal(text(r.stdout), '');
    assert.match(text(r.stderr), /^rexec: .*\/\.netrc is readable by group or others \(mode 0644\) and holds a password: refused\. .*chmod 600/);
    assert.ok(!text(r.stderr).includes(PASSWORD));
  });

  test('the environment beats ~/.netrc; -p beats the environment', async () => {
    netrc(`machine 127.0.0.1 login ${USER} password wrong-one\n`);
    let r = await runRexec({ args: [target(), 'id -un'], env: env({ REXEC_USER: USER, REXEC_PASSWORD: PASSWORD }) });
    assert.equal(text(r.stdout), `${USER}\n`, text(r.stderr));
    r = await runRexec({ args: ['-p', PASSWORD, target(), 'id -un'], env: env({ REXEC_USER: USER, REXEC_PASSWORD: 'wrong' }) });
    assert.equal(text(r.stdout), `${USER}\n`, text(r.stderr));
    // ...and the wrong netrc password is really what is used without them.
    r = await runRexec({ args: [target(), 'id -un'], env: env() });
    assert.equal(r.code, 1);
    assert.equal(text(r.stderr), 'Login incorrect.\n');
  });

  test('no password and no terminal: a clear error, exit 2', async () => {
    rmSync(join(home, '.netrc'), { force: true });
    const r = await runRexec({ args: ['-l', USER, target(), 'id -un'], env: env(), detached: true });
    assert.equal(r.code, 2);
    assert.match(text(r.stderr), /^rexec: no password given and no terminal to ask for one/);
  });

  test('-p does not stay visible in ps', async () => {
    const seen: string[] = [];
    const r = await runRexec({
      args: ['-l', USER, '-p', PASSWORD, target(), 'echo started; sleep 0.5'],
      env: env(),
      onSpawn: (c) => c.stdout?.once('data', () => seen.push(readFileSync(`/proc/${c.pid}/cmdline`, 'latin1'))),
    });
    assert.equal(r.code, 0, text(r.stderr));
    assert.equal(seen.length, 1);
    assert.ok(!seen[0]?.includes(PASSWORD), JSON.stringify(seen[0]));
  });
});

describe('the password prompt on a terminal', () => {
  const args = () => ['-l', USER, `127.0.0.1:${w.ports.ours}`, 'echo ran; tty >/dev/null || echo no-tty'];

  test('asks on the terminal with echo off, puts echo back', async () => {
    const r = await runOnPty({ args: args(), env: env(), answer: PASSWORD });
    assert.equal(r.exit, 0, r.output);
    assert.ok(r.prompted);
    assert.equal(r.echoWhilePrompting, false);
    assert.equal(r.echoAfter, true);
    assert.ok(!r.output.includes(PASSWORD), 'the password was not echoed');
    assert.match(r.output, /^Password: \r?\nran\r\nno-tty\r\n$/);
  });

  test('line editing: backspace and Ctrl-U', async () => {
    const r = await runOnPty({ args: args(), env: env(), answer: `junk\x15wonderX\x7f-7` });
    assert.equal(r.exit, 0, r.output);
    assert.match(r.output, /ran/);
  });

  test('a wrong typed password is refused like any other', async () => {
    const r = await runOnPty({ args: args(), env: env(), answer: 'nope' });
    assert.equal(r.exit, 1);
    assert.match(r.output, /Login incorrect\.\r\n$/);
  });

  const interruptions: [how: string, spec: Pick<PtyOptions, 'answer' | 'signal'>, status: number][] = [
    ['Ctrl-C', { answer: '\x03' }, 130],
    ['SIGTERM', { signal: 'SIGTERM' }, 143],
    ['SIGHUP', { signal: 'SIGHUP' }, 129],
  ];
  for (const [how, spec, status] of interruptions) {
    test(`${how} at the prompt: echo is back on, exit ${status}`, async () => {
      const r = await runOnPty({ args: args(), env: env(), ...spec });
      assert.equal(r.exit, status, r.output);
      assert.equal(r.echoWhilePrompting, false);
      assert.equal(r.echoAfter, true);
      assert.match(r.output, /rexec: interrupted while asking for the password/);
    });
  }
});

/** Reads the request a field at a time, as a scripted server needs it. */
interface FieldReader {
  /** The next NUL-terminated field (waits for it). */
  field(): Promise<string>;
  /** Bytes received and not yet read as a field. */
  pending(): number;
}

/** What a scripted server's handler found out, for the test to check. */
interface Findings {
  error?: unknown;
  listening?: string;
  sentBeforeConnectBack?: number;
  strayGotData?: boolean;
  strayClosedMs?: number;
  fields?: string[];
}

type Handler = (main: Socket, reader: FieldReader, results: Findings) => Promise<void>;

/** A scripted rexec server on loopback: handler(main, fields, results) for each connection. */
async function scripted(host: string, handler: Handler) {
  const results: Findings = {};
  const server = createServer(async (sock) => {
    let buf = Buffer.alloc(0);
    let wake = () => {};
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      wake();
    });
    sock.on('error', () => {});
    const field = async (): Promise<string> => {
      for (;;) {
        const nul = buf.indexOf(0);
        if (nul >= 0) {
          const v = buf.subarray(0, nul).toString();
          buf = buf.subarray(nul + 1);
          return v;
        }
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    try {
      await handler(sock, { field, pending: () => buf.length }, results);
    } catch (e) {
      results.error = e;
      sock.destroy();
    }
  });
  const port = await listenEphemeral(server, host);
  return { port, results, close: () => server.close() };
}

describe('protocol order and the stderr listener (scripted server)', () => {
  for (const host of ['127.0.0.1', '::1']) {
    test(`${host}: listens on the main connection's address, waits for the connect-back, turns strays away`, async () => {
      const srv = await scripted(host, async (main, { field, pending }, res) => {
        const port = Number(await field());
        res.listening = execFileSync('ss', ['-ltnH', `sport = :${port}`]).toString();
        await sleep(300);
        res.sentBeforeConnectBack = pending();
        if (host === '127.0.0.1') {
          const stray = await dial(port, host, '127.0.0.2');
          const t0 = performance.now();
          stray.on('data', () => (res.strayGotData = true));
          stray.on('error', () => {});
          await once(stray, 'close');
          res.strayClosedMs = performance.now() - t0;
        }
        const back = await dial(port, host);
        res.fields = [await field(), await field(), await field()];
        main.write('\0hello from main\n'); // the status byte and output in one segment
        back.end('hello from stderr\n');
        main.end();
      });
      const r = await runRexec({ args: ['-l', 'u', '-p', 'pw', '-P', String(srv.port), host, 'the', 'command'], env: env() });
      srv.close();
      if (srv.results.error) throw srv.results.error;
      assert.equal(r.code, 0, text(r.stderr));
      assert.equal(text(r.stdout), 'hello from main\n');
      assert.equal(text(r.stderr), 'hello from stderr\n');
      const bracketed = host.includes(':') ? `[${host}]` : host;
      assert.match(srv.results.listening ?? '', new RegExp(`^LISTEN .* ${bracketed.replace(/[[\]]/g, '\\$&')}:\\d+ `), srv.results.listening);
      assert.equal(srv.results.listening?.trim().split('\n').length, 1, 'one listener, on that address only');
      assert.equal(srv.results.sentBeforeConnectBack, 0, 'nothing after the port field before the connect-back');
      assert.deepEqual(srv.results.fields, ['u', 'pw', 'the command']);
      if (host === '127.0.0.1') assert.ok((srv.results.strayClosedMs ?? Infinity) < 3000, `stray closed after ${srv.results.strayClosedMs} ms`);
    });
  }

  test('a server that never connects back: gives up after --timeout, exit 2', async () => {
    const srv = await scripted('127.0.0.1', async (main, { field }) => {
      await field();
      await sleep(10000); // were the client to wait, it would see this close instead
      main.destroy();
    });
    const r = await runRexec({ args: ['-l', 'u', '-p', 'pw', '--timeout', '1', `127.0.0.1:${srv.port}`, 'x'], env: env() });
    srv.close();
    assert.equal(r.code, 2);
    assert.equal(text(r.stderr), 'rexec: 127.0.0.1: timed out after 1 s waiting for the server to connect back to the stderr port\n');
    assert.ok(r.ms < 9000, `${r.ms} ms`);
  });

  test('a diagnostic instead of the connect-back: printed without the flag, a hint, exit 1', async () => {
    const srv = await scripted('127.0.0.1', async (main, { field }) => {
      await field();
      main.end("\x01Can't connect to stderr port.\n");
    });
    const r = await runRexec({ args: ['-l', 'u', '-p', 'pw', `127.0.0.1:${srv.port}`, 'x'], env: env() });
    srv.close();
    assert.equal(r.code, 1);
    const [first, second] = text(r.stderr).split('\n');
    assert.equal(first, "Can't connect to stderr port.");
    assert.match(second ?? '', /^rexec: .*-e does without that connection$/);
  });

  test('a server that closes instead of connecting back: exit 1, said so', async () => {
    const srv = await scripted('127.0.0.1', async (main, { field }) => {
      await field();
      main.end();
    });
    const r = await runRexec({ args: ['-l', 'u', '-p', 'pw', `127.0.0.1:${srv.port}`, 'x'], env: env() });
    srv.close();
    assert.equal(r.code, 1);
    assert.equal(text(r.stderr), 'rexec: 127.0.0.1 closed the connection instead of connecting back to the stderr port; -e does without that connection\n');
  });

  test('-e: an empty port field, then the request; a status byte other than \\0 or \\001 is a refusal', async () => {
    const srv = await scripted('127.0.0.1', async (main, { field }, res) => {
      res.fields = [await field(), await field(), await field(), await field()];
      main.end('Permission denied by policy\nand more that is not read\n');
    });
    const r = await runRexec({ args: ['-e', '-l', 'u', '-p', 'pw', `127.0.0.1:${srv.port}`, 'x'], env: env() });
    srv.close();
    assert.deepEqual(srv.results.fields, ['', 'u', 'pw', 'x']);
    assert.equal(r.code, 1);
    assert.equal(text(r.stdout), '');
    assert.equal(text(r.stderr), 'Permission denied by policy\n');
  });

  test('no server: the host and the reason, exit 2', async () => {
    // rexec runs inside the world, whose /etc/hosts (not the machine's) says what
    // localhost is: 127.0.0.1 and ::1, as Debian's own file says.  Each is tried, in
    // the resolver's order.
    const port = await freePort();
    const refused = (address: string) => `${address} port ${port}: Connection refused`;
    const r = await runRexec({ args: ['-l', 'u', '-p', 'pw', `localhost:${port}`, 'x'], env: env(), namespace: w });
    assert.equal(r.code, 2);
    const either = [[refused('::1'), refused('127.0.0.1')], [refused('127.0.0.1'), refused('::1')]].map((tried) => `rexec: localhost: cannot connect: ${tried.join('; ')}\n`);
    assert.ok(either.includes(text(r.stderr)), JSON.stringify(text(r.stderr)));
    // -4: the IPv4 address only.
    const v4 = await runRexec({ args: ['-4', '-l', 'u', '-p', 'pw', `localhost:${port}`, 'x'], env: env(), namespace: w });
    assert.equal(v4.code, 2);
    assert.equal(text(v4.stderr), `rexec: localhost: cannot connect: ${refused('127.0.0.1')}\n`);
  });
});
