// Fuzzing the request (issue 6): random and mutated requests against an independent
// model of SPEC §2.1-2.5, first 10 000 in-process through the real field reader,
// fed in random chunks exactly as the connection feeds it, then as many as the time
// budget allows over real sockets to rexecd under openbsd-inetd.
//
// Over the socket every connection must end with exactly the diagnostic the model
// predicts, a clean close (the client left, or the deadline passed), or, only for
// valid credentials, "\0" and a run; never other bytes (no stack trace, no text),
// never a "\0" without valid credentials.  With -l every connection's log lines are
// found by the client's port: each has an outcome line, none says "failed serving".
//
//   REXECD_FUZZ_CASES=N   socket cases (default 1500; 10 000 take ~4 min on 2 cores)
//   REXECD_FUZZ_SEED=S    reproduce a run (the seed is printed)
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld } from '../harness/world.mjs';
import { closedPort } from '../harness/sockets.mjs';
import { RequestReader } from '../../dist/protocol/request.js';
import { commandLimit } from '../../dist/options.js';
import { argMax } from '../../dist/sys/process.js';

const SOCKET_CASES = Number(process.env.REXECD_FUZZ_CASES ?? 1500);
const PARSER_CASES = 10_000;
const SEED = Number(process.env.REXECD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CONCURRENCY = 24;
const USER = 'fz';
const PASSWORD = 'fz-pass';
// The limits rexecd uses on this system (the same computation as src/rexecd.ts).
const LIMITS = { user: 16, password: 16, command: commandLimit(argMax()) };

const DIAG = {
  port: 'Bad stderr port.',
  connect: "Can't connect to stderr port.",
  user: 'username too long',
  password: 'password too long',
  command: 'command too long',
  login: 'Login incorrect.',
};
const VALID_DIAGS = new Set(['Bad stderr port.', "Can't connect to stderr port.", 'username too long', 'password too long', 'command too long', 'Login incorrect.', 'No remote directory.', 'Try again.'].map((t) => `\x01${t}\n`));

// ------------------------------------------------------------------ the model
/**
 * SPEC §2.1-2.5 written out independently of src/protocol: what rexecd must answer
 * to these bytes.  ports: { listener, closed } (the only valid ports the generator
 * uses).  Returns { refuse: text, stage } | { incomplete: stage } |
 * { request: { port, user, password, command }, length }.
 */
function model(bytes, ports) {
  let off = 0;
  const values = {};
  for (const name of ['port', 'user', 'password', 'command']) {
    const max = name === 'port' ? 5 : LIMITS[name];
    let i = off;
    for (; i < bytes.length && bytes[i] !== 0; i++) {
      if (name === 'port' && (bytes[i] < 0x30 || bytes[i] > 0x39)) return { refuse: DIAG.port, stage: name };
      if (i - off >= max) return { refuse: DIAG[name], stage: name };
    }
    if (i === bytes.length) return { incomplete: name };
    values[name] = bytes.subarray(off, i);
    off = i + 1;
    if (name === 'port') {
      const n = values.port.length ? Number(values.port.toString('latin1')) : 0;
      if (n !== 0 && (n < 1024 || n > 65535)) return { refuse: DIAG.port, stage: 'port' };
      if (n !== 0 && n === ports.closed) return { refuse: DIAG.connect, stage: 'connect' };
      values.portNumber = n;
    }
  }
  return { request: values, length: off };
}

const validCredentials = (r) => r.user.toString('latin1') === USER && r.password.toString('latin1') === PASSWORD;

// ------------------------------------------------------------------ the generator
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed, ports) {
  const rnd = mulberry32(seed);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const chance = (p) => rnd() < p;
  const b = (s) => Buffer.from(s, 'latin1');
  const ALPHABETS = [
    () => int(0, 255),
    () => pick([0, 0x30, 0x31, 0x35, 0x39, 0x61, 0x0a, 0xff]),
    () => (chance(0.2) ? 0 : int(0x20, 0x7e)),
    () => (chance(0.3) ? 0 : int(0x30, 0x39)),
  ];
  const randomBytes = (len, alphabet = pick(ALPHABETS)) => Buffer.from(Array.from({ length: len }, alphabet));
  const randomLength = () => pick([int(0, 8), int(0, 64), int(0, 512), int(0, 4096)]);
  const printable = (len) => randomBytes(len, () => int(0x21, 0x7e));
  const field = (x) => Buffer.concat([typeof x === 'string' ? b(x) : x, Buffer.from([0])]);

  const BAD_PORTS = ['80', '1', '1023', '65536', '99999', '123456', '-1', '+2000', ' 2000', '2000 ', '0x800', '1e4', '２０００', '00080', '4294967296', 'abc'];
  const port = () => {
    const r = rnd();
    if (r < 0.3) return '';
    if (r < 0.4) return pick(['0', '00', '00000']);
    if (r < 0.7) return String(ports.listener);
    if (r < 0.8) return pick([String(ports.closed), `0${ports.closed}`.slice(-5)]);
    return pick(BAD_PORTS);
  };
  const user = () => pick([USER, USER, USER, 'root', 'nosuchuser', '', printable(int(1, 16)), randomBytes(int(1, 16), () => int(1, 255)), 'abcdefghijklmnop', '%s%n%x', 'fz\n', '../fz']);
  const password = () => pick([PASSWORD, PASSWORD, 'wrong', '', printable(int(1, 16)), randomBytes(int(1, 16), () => int(1, 255)), '%s%s%s%s', 'fz-pass ']);
  const SEEDS = ['true', 'echo hi', 'id -un', 'echo $HOME $USER', 'cat', 'printf "%s\\n" a b', 'echo err >&2', 'exit 3', 'ls -d /', ''];
  const mutate = (text) => {
    const bytes = [...b(text)];
    for (let k = int(0, 6); k > 0; k--) {
      const at = int(0, bytes.length);
      const op = int(0, 2);
      if (op === 0) bytes.splice(at, 0, int(1, 255));
      else if (op === 1 && bytes.length) bytes.splice(Math.min(at, bytes.length - 1), 1);
      else if (bytes.length) bytes[Math.min(at, bytes.length - 1)] = int(1, 255);
    }
    return Buffer.from(bytes);
  };
  const command = () => (chance(0.7) ? mutate(pick(SEEDS)) : printable(int(0, 200)));
  const request = (o = {}) => Buffer.concat([field(o.port ?? port()), field(o.user ?? user()), field(o.password ?? password()), field(o.command ?? command())]);

  const kinds = {
    random: () => randomBytes(randomLength()),
    truncated: () => {
      const r = request();
      return r.subarray(0, int(0, r.length - 1));
    },
    huge: () => {
      const which = pick(['port', 'user', 'password', 'command', 'command']);
      const o = {};
      if (which === 'port') o.port = '1'.repeat(int(6, 2000));
      if (which === 'user') o.user = printable(pick([17, int(17, 100), int(100, 70000)]));
      if (which === 'password') o.password = printable(pick([17, int(17, 100), int(100, 70000)]));
      if (which === 'command') o.command = printable(pick([LIMITS.command, LIMITS.command + 1, int(LIMITS.command + 1, LIMITS.command + 20000), int(1000, LIMITS.command)]));
      return request(o);
    },
    nuls: () => {
      const bytes = [...request()];
      for (let k = int(1, 3); k > 0; k--) {
        const at = int(0, bytes.length);
        if (chance(0.5)) bytes.splice(at, 0, 0);
        else bytes[Math.min(at, bytes.length - 1)] = 0;
      }
      return Buffer.from(bytes);
    },
    badPort: () => request({ port: chance(0.7) ? pick(BAD_PORTS) : randomBytes(int(1, 8)).toString('latin1').replace(/\0/g, '') }),
    garbageAfter: () => {
      const fields = [field(port()), field(user()), field(password()), field(command())];
      return Buffer.concat([...fields.slice(0, int(0, 3)), randomBytes(randomLength())]);
    },
    validMutatedCommand: () => Buffer.concat([request({ user: USER, password: PASSWORD }), chance(0.3) ? printable(int(1, 300)) : Buffer.alloc(0)]),
    nearMiss: () => request({ user: pick([USER, mutate(USER)]), password: pick([mutate(PASSWORD), PASSWORD.toUpperCase(), PASSWORD.slice(0, -1), `${PASSWORD}x`]) }),
  };
  const WEIGHTS = [['random', 14], ['truncated', 14], ['huge', 8], ['nuls', 12], ['badPort', 8], ['garbageAfter', 12], ['validMutatedCommand', 20], ['nearMiss', 12]];
  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);

  return function next() {
    let r = rnd() * total;
    let kind = WEIGHTS[0][0];
    for (const [k, w] of WEIGHTS) {
      if ((r -= w) < 0) {
        kind = k;
        break;
      }
    }
    let bytes = kinds[kind]();
    // No connect-back to anybody's port but ours: a valid port that is neither our
    // listener nor our closed port becomes the listener's.
    const nul = bytes.indexOf(0);
    if (nul > 0 && nul <= 5 && /^[0-9]+$/.test(bytes.subarray(0, nul).toString('latin1'))) {
      const n = Number(bytes.subarray(0, nul).toString('latin1'));
      if (n >= 1024 && n <= 65535 && n !== ports.listener && n !== ports.closed) bytes = Buffer.concat([b(String(ports.listener)), bytes.subarray(nul)]);
    }
    const expect = model(bytes, ports);
    const runs = expect.request !== undefined && validCredentials(expect.request);
    // How the client ends: half-close, wait for the server, close, reset.  A
    // session that runs a command always half-closes (the command's stdin ends).
    const ending = runs ? 'end' : pick(['end', 'end', 'end', 'end', 'wait', 'wait', 'destroy', 'reset']);
    // Sent whole, or in a few pieces with small pauses.
    const cuts = chance(0.7) ? [] : Array.from({ length: int(1, 3) }, () => int(0, bytes.length)).sort((x, y) => x - y);
    return { kind, bytes, expect, runs, ending, cuts, pam: chance(0.2) };
  };
}

// ------------------------------------------------------------------ in-process
/**
 * The connection's loop (src/io/connection.ts read) without the socket: the bytes
 * offered in chunks, the connect-back done (refused at the model's closed port).
 */
function feed(bytes, cuts, ports) {
  const reader = new RequestReader(LIMITS);
  let off = 0;
  let chunk = 0;
  let portNumber = 0;
  for (;;) {
    const end = chunk < cuts.length ? Math.max(off, cuts[chunk]) : bytes.length;
    const { consumed, event } = reader.offer(bytes.subarray(off, end));
    off += consumed;
    switch (event.kind) {
      case 'refuse':
        return { refuse: event.diagnostic, stage: reader.waitingFor, consumed: off };
      case 'connect-back':
        portNumber = event.port;
        if (portNumber === ports.closed) return { refuse: DIAG.connect, stage: 'connect', consumed: off };
        reader.connected();
        break;
      case 'request':
        return { request: { ...event.request, portNumber }, consumed: off };
      case 'more':
        if (end >= bytes.length) return { incomplete: reader.waitingFor, consumed: off };
        chunk++;
    }
  }
}

test(`parser: ${PARSER_CASES} generated requests in random chunks agree with the model of SPEC §2 (seed ${SEED})`, () => {
  const ports = { listener: 40000, closed: 40001 };
  const next = generator(SEED, ports);
  const rnd = mulberry32(SEED ^ 0x5eed);
  const seen = {};
  for (let i = 0; i < PARSER_CASES; i++) {
    const c = next();
    const cuts = Array.from({ length: Math.floor(rnd() * 6) }, () => Math.floor(rnd() * (c.bytes.length + 1))).sort((x, y) => x - y);
    const got = feed(c.bytes, cuts, ports);
    const want = c.expect;
    const where = `case ${i} (${c.kind}) ${JSON.stringify(c.bytes.subarray(0, 80).toString('latin1'))}`;
    if (want.request) {
      assert.ok(got.request, `${where}: ${JSON.stringify(got)}`);
      // Never a byte past the command's NUL.
      assert.equal(got.consumed, want.length, where);
      for (const f of ['user', 'password', 'command']) assert.deepEqual(got.request[f], want.request[f], where);
      assert.equal(got.request.portNumber, want.request.portNumber, where);
      seen.request = (seen.request ?? 0) + 1;
    } else if (want.refuse) {
      assert.deepEqual([got.refuse, got.stage], [want.refuse, want.stage], `${where}: ${JSON.stringify(got)}`);
      assert.ok(got.consumed <= c.bytes.length, where);
      seen[want.refuse] = (seen[want.refuse] ?? 0) + 1;
    } else {
      assert.equal(got.incomplete, want.incomplete, `${where}: ${JSON.stringify(got)}`);
      assert.equal(got.consumed, c.bytes.length, where);
      seen[`incomplete ${want.incomplete}`] = (seen[`incomplete ${want.incomplete}`] ?? 0) + 1;
    }
  }
  console.log(`# parser outcomes: ${JSON.stringify(seen)}`);
  for (const k of ['request', DIAG.port, DIAG.user, DIAG.password, DIAG.command, 'incomplete port', 'incomplete command']) assert.ok(seen[k] > 0, `the generator never made: ${k}`);
});

// ------------------------------------------------------------------ over sockets
describe(`socket fuzz: ${SOCKET_CASES} connections to rexecd under inetd (seed ${SEED})`, () => {
  let w;
  let shellDir;
  let listener;
  let closed;
  const stderrSeen = { connections: 0 };
  before(async () => {
    // The fuzz user's login shell bounds every command it runs: a mutated command
    // may well be "yes" or "cat".
    shellDir = mkdtempSync(join(tmpdir(), 'rexecd-fuzz-shell-'));
    chmodSync(shellDir, 0o755);
    const shell = join(shellDir, 'fzsh');
    writeFileSync(shell, '#!/bin/sh\nexec /usr/bin/timeout -s KILL 3 /bin/sh "$@"\n', { mode: 0o755 });
    // Cases that wait for the deadline go to a service with --timeout 1; the rest get
    // 10 s, so that a start-up slowed by load (the deadline counts from the process's
    // start) does not turn an answer into a timeout.
    const opts = ['--fail-delay', '0', '-l'];
    w = await startWorld({
      users: [{ name: USER, password: PASSWORD, method: 'sha512crypt', shell }],
      services: { shadow: ['--auth', 'shadow', '--timeout', '10', ...opts], pam: ['--timeout', '10', ...opts], deadline: ['--auth', 'shadow', '--timeout', '1', ...opts] },
    });
    listener = createServer((s) => {
      stderrSeen.connections++;
      s.on('error', () => {});
      s.resume();
    });
    await new Promise((r) => listener.listen(0, '127.0.0.1', r));
    closed = closedPort();
  });
  after(async () => {
    listener?.close();
    closed?.close();
    await w?.stop();
    if (shellDir) rmSync(shellDir, { recursive: true, force: true });
  });

  test('every connection ends as the model says; nothing else reaches the client; every session is logged', async () => {
    const ports = { listener: listener.address().port, closed: closed.port };
    const next = generator(SEED, ports);
    const cases = Array.from({ length: SOCKET_CASES }, next);
    const t0 = performance.now();
    let i = 0;
    const results = new Array(cases.length);
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (i < cases.length) {
        const k = i++;
        const c = cases[k];
        results[k] = await exchange(c.ending === 'wait' && c.expect.incomplete ? w.ports.deadline : c.pam ? w.ports.pam : w.ports.shadow, c);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;

    // The log first: each connection's own lines, found by its client port (a port
    // the kernel reused is told apart by order: connections and log lines alike come
    // in the order they were made).
    await new Promise((r) => setTimeout(r, 1500)); // the last runs
    const lines = w.logs().map((l) => l.text);
    const byPid = new Map();
    const pidsOfPort = new Map();
    for (const line of lines) {
      const m = /rexecd\[(\d+)\]: (.*)$/.exec(line);
      if (!m) continue;
      if (!byPid.has(m[1])) byPid.set(m[1], []);
      byPid.get(m[1]).push(m[2]);
      const c = /^connection from 127\.0\.0\.1 port (\d+)$/.exec(m[2]);
      if (c) {
        if (!pidsOfPort.has(c[1])) pidsOfPort.set(c[1], []);
        pidsOfPort.get(c[1]).push(m[1]);
      }
    }
    const casesOfPort = new Map();
    results.forEach((r, k) => {
      if (r.localPort === undefined) return;
      if (!casesOfPort.has(r.localPort)) casesOfPort.set(r.localPort, []);
      casesOfPort.get(r.localPort).push(k);
    });
    const pidOfCase = new Map();
    let ambiguous = 0;
    for (const [port, ks] of casesOfPort) {
      const pids = pidsOfPort.get(String(port)) ?? [];
      ks.sort((x, y) => results[x].connectedAt - results[y].connectedAt);
      if (pids.length === ks.length) ks.forEach((k, j) => pidOfCase.set(k, pids[j]));
      else if (ks.length > 1 || pids.length > 1) ambiguous += ks.length;
    }
    const own = (k) => (pidOfCase.has(k) ? byPid.get(pidOfCase.get(k)).filter((l) => !l.startsWith('connection from')) : []);

    const failures = [];
    const tally = {};
    const count = (k) => (tally[k] = (tally[k] ?? 0) + 1);
    cases.forEach((c, k) => {
      const r = results[k];
      const text = r.data.toString('latin1');
      const fail = (why) => failures.push(`case ${k} (${c.kind}, ${c.ending}${c.pam ? ', pam' : ''}): ${why}; sent ${JSON.stringify(c.bytes.subarray(0, 60).toString('latin1'))}${c.bytes.length > 60 ? `... (${c.bytes.length} bytes)` : ''}; got ${JSON.stringify(text.slice(0, 200))} (${r.how}); log ${JSON.stringify(own(k))}`);
      // Whatever the ending, only these may ever arrive.
      if (text.length && !VALID_DIAGS.has(text) && !(c.runs && text[0] === '\0')) return fail('bytes that are neither a diagnostic nor a run');
      if (text[0] === '\0' && !c.runs) return fail('a "\\0" without valid credentials');
      if (c.ending === 'destroy' || c.ending === 'reset') return count(`${c.ending} (unobserved)`);
      const e = c.expect;
      if (e.refuse) {
        if (text !== `\x01${e.refuse}\n`) return fail(`expected ${JSON.stringify(e.refuse)}`);
        return count(e.refuse);
      }
      if (e.incomplete) {
        // On the 1 s service a start-up slowed by load can reach the deadline while
        // dialling the stderr port back: that is "Can't connect" (SPEC §2.2), logged so.
        if (text === `\x01${DIAG.connect}\n` && c.ending === 'wait' && own(k).some((l) => /timeout \(\d+ s\) waiting for the stderr connection from /.test(l))) return count('deadline while dialling back (wait)');
        if (text !== '') return fail('expected nothing (incomplete request)');
        if (r.how !== 'eof' && r.how !== 'reset') return fail('expected a close');
        return count(`incomplete ${e.incomplete} (${c.ending})`);
      }
      if (c.runs) {
        if (text[0] !== '\0') return fail('expected "\\0" and a run');
        return count('run');
      }
      if (text !== `\x01${DIAG.login}\n`) return fail('expected Login incorrect.');
      return count(DIAG.login);
    });

    // Every session has an outcome in the log.
    let unlogged = 0;
    results.forEach((r, k) => {
      if (r.localPort === undefined || !pidOfCase.has(k)) {
        // A connection reset before rexecd starts may never reach it (inetd's libwrap
        // drops it) or fail at getpeername (logged, but without a port to match).
        if (r.localPort !== undefined && !(cases[k].ending === 'reset' || cases[k].ending === 'destroy') && (casesOfPort.get(r.localPort)?.length ?? 0) === 1 && !(pidsOfPort.get(String(r.localPort))?.length > 1)) {
          unlogged++;
          if (unlogged <= 5) failures.push(`case ${k} (${cases[k].kind}, ${cases[k].ending}): no "connection from" line in the log`);
        }
        return;
      }
      if (own(k).length === 0) {
        unlogged++;
        if (unlogged <= 5) failures.push(`case ${k} (${cases[k].kind}, ${cases[k].ending}): no outcome in the log (pid ${pidOfCase.get(k)})`);
      }
    });
    if (process.env.REXECD_FUZZ_DEBUG) for (const [pid, l] of byPid) if (!l.some((x) => x.startsWith('connection from'))) console.log(`# uncorrelated ${pid}: ${l.join(' | ')}`);
    const unexpected = lines.filter((l) => /failed serving|TypeError|RangeError|ReferenceError|SyntaxError/.test(l));
    for (const l of unexpected.slice(0, 10)) failures.push(`log: ${l}`);

    console.log(`# socket fuzz: ${cases.length} connections in ${seconds.toFixed(1)} s (${((seconds * 1000) / cases.length).toFixed(1)} ms each, ${CONCURRENCY} at a time), seed ${SEED}`);
    console.log(`# outcomes: ${JSON.stringify(tally)}`);
    console.log(`# stderr connections made back: ${stderrSeen.connections}; log lines: ${lines.length}; unlogged sessions: ${unlogged}; sessions on a reused client port not told apart: ${ambiguous}`);
    assert.deepEqual(failures.slice(0, 25), [], `${failures.length} failures (seed ${SEED})`);
    assert.ok(tally.run > 0 && tally[DIAG.login] > 0 && tally[DIAG.port] > 0, 'the generator covers runs and refusals');
  });
});

/** One connection: send the case's bytes as it says, then end it as it says. */
function exchange(port, c) {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const chunks = [];
    let size = 0;
    let how = 'eof';
    let localPort;
    let connectedAt;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), how, localPort, connectedAt });
    };
    // The longest a case may take: a slow start-up, a 3 s command, and slack.
    const timer = setTimeout(() => {
      how = 'timeout';
      sock.destroy();
      finish();
    }, 20000);
    sock.on('data', (d) => {
      chunks.push(d);
      size += d.length;
      if (size > 65536) {
        how = 'limit';
        sock.destroy();
        finish();
      }
    });
    sock.on('error', (e) => {
      if (how === 'eof') how = e.code === 'ECONNRESET' ? 'reset' : e.code;
    });
    sock.on('close', finish);
    sock.on('connect', async () => {
      localPort = sock.localPort;
      connectedAt = performance.now();
      let off = 0;
      for (const cut of c.cuts) {
        if (sock.destroyed) break;
        sock.write(c.bytes.subarray(off, cut));
        off = cut;
        await new Promise((r) => setTimeout(r, 5));
      }
      if (sock.destroyed) return;
      sock.write(c.bytes.subarray(off));
      if (c.ending === 'end') sock.end();
      else if (c.ending === 'destroy') sock.destroy();
      else if (c.ending === 'reset') sock.resetAndDestroy();
    });
  });
}
