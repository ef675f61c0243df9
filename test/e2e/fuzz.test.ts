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
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, type World } from '../harness/world';
import { closedPort, listenEphemeral, type HeldPort } from '../harness/sockets';
import { sleep } from '../harness/wait';
import { RequestReader, type FieldLimits, type FieldName, type Request } from '../../src/protocol/request';
import { commandLimit } from '../../src/options';
import { argMax } from '../../src/sys/process';

const SOCKET_CASES = Number(process.env.REXECD_FUZZ_CASES ?? 1500);
const PARSER_CASES = 10_000;
const SEED = Number(process.env.REXECD_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CONCURRENCY = 24;
const USER = 'fz';
const PASSWORD = 'fz-pass';
// The limits rexecd uses on this system (the same computation as src/rexecd.ts).
const LIMITS: FieldLimits = { user: 16, password: 16, command: commandLimit(argMax()) };

const DIAG = {
  port: 'Bad stderr port.',
  connect: "Can't connect to stderr port.",
  user: 'username too long',
  password: 'password too long',
  command: 'command too long',
  login: 'Login incorrect.',
} as const;
const VALID_DIAGS = new Set(['Bad stderr port.', "Can't connect to stderr port.", 'username too long', 'password too long', 'command too long', 'Login incorrect.', 'No remote directory.', 'Try again.'].map((t) => `\x01${t}\n`));

// ------------------------------------------------------------------ the model
/** The four fields, in the model's own words. */
type Field = 'port' | 'user' | 'password' | 'command';
const FIELDS: readonly Field[] = ['port', 'user', 'password', 'command'];

/** The only valid stderr ports the generator uses: one that listens, one that refuses. */
interface Ports {
  readonly listener: number;
  readonly closed: number;
}

/** What rexecd must do with some bytes. */
type Outcome =
  /** The diagnostic for a field that breaks the rules. */
  | { readonly kind: 'refuse'; readonly text: string; readonly stage: Field }
  /** A valid port where nobody listens: the connect-back, right after the port field, fails. */
  | { readonly kind: 'refuse'; readonly text: typeof DIAG.connect; readonly stage: 'connect'; readonly portEnd: number }
  /** Nothing yet: the bytes end inside stage. */
  | { readonly kind: 'incomplete'; readonly stage: Field }
  /** A whole request, length bytes long. */
  | { readonly kind: 'request'; readonly fields: Readonly<Record<Field, Buffer>>; readonly portNumber: number; readonly length: number };

/**
 * SPEC §2.1-2.5 written out independently of src/protocol: what rexecd must answer
 * to these bytes.
 */
function model(bytes: Buffer, ports: Ports): Outcome {
  let off = 0;
  const values: Partial<Record<Field, Buffer>> = {};
  let portNumber = 0;
  for (const name of FIELDS) {
    const max = name === 'port' ? 5 : LIMITS[name];
    let i = off;
    for (; i < bytes.length && bytes[i] !== 0; i++) {
      const c = bytes[i]!;
      if (name === 'port' && (c < 0x30 || c > 0x39)) return { kind: 'refuse', text: DIAG.port, stage: name };
      if (i - off >= max) return { kind: 'refuse', text: DIAG[name], stage: name };
    }
    if (i === bytes.length) return { kind: 'incomplete', stage: name };
    const value = bytes.subarray(off, i);
    values[name] = value;
    off = i + 1;
    if (name === 'port') {
      const n = value.length ? Number(value.toString('latin1')) : 0;
      if (n !== 0 && (n < 1024 || n > 65535)) return { kind: 'refuse', text: DIAG.port, stage: 'port' };
      if (n !== 0 && n === ports.closed) return { kind: 'refuse', text: DIAG.connect, stage: 'connect', portEnd: off };
      portNumber = n;
    }
  }
  const { port, user, password, command } = values;
  if (!port || !user || !password || !command) throw new Error('the model lost a field');
  return { kind: 'request', fields: { port, user, password, command }, portNumber, length: off };
}

const validCredentials = (r: Readonly<Record<Field, Buffer>>) => r.user.toString('latin1') === USER && r.password.toString('latin1') === PASSWORD;

// ------------------------------------------------------------------ the generator
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** How the client ends: half-close, wait for the server, close, reset. */
type Ending = 'end' | 'wait' | 'destroy' | 'reset';

/** One generated connection. */
interface Case {
  readonly kind: string;
  readonly bytes: Buffer;
  readonly expect: Outcome;
  /** Valid credentials: a command runs. */
  readonly runs: boolean;
  readonly ending: Ending;
  /** Where the bytes are cut into separate writes. */
  readonly cuts: readonly number[];
  /** To the PAM service rather than the shadow one. */
  readonly pam: boolean;
}

type Bytes = string | Buffer;
type Overrides = Partial<Record<Field, Bytes>>;

function generator(seed: number, ports: Ports): () => Case {
  const rnd = mulberry32(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const chance = (p: number) => rnd() < p;
  const b = (s: string) => Buffer.from(s, 'latin1');
  const ALPHABETS = [
    () => int(0, 255),
    () => pick([0, 0x30, 0x31, 0x35, 0x39, 0x61, 0x0a, 0xff]),
    () => (chance(0.2) ? 0 : int(0x20, 0x7e)),
    () => (chance(0.3) ? 0 : int(0x30, 0x39)),
  ];
  const randomBytes = (len: number, alphabet = pick(ALPHABETS)) => Buffer.from(Array.from({ length: len }, alphabet));
  const randomLength = () => pick([int(0, 8), int(0, 64), int(0, 512), int(0, 4096)]);
  const printable = (len: number) => randomBytes(len, () => int(0x21, 0x7e));
  const field = (x: Bytes) => Buffer.concat([typeof x === 'string' ? b(x) : x, Buffer.from([0])]);

  const BAD_PORTS = ['80', '1', '1023', '65536', '99999', '123456', '-1', '+2000', ' 2000', '2000 ', '0x800', '1e4', '２０００', '00080', '4294967296', 'abc'];
  const port = (): string => {
    const r = rnd();
    if (r < 0.3) return '';
    if (r < 0.4) return pick(['0', '00', '00000']);
    if (r < 0.7) return String(ports.listener);
    if (r < 0.8) return pick([String(ports.closed), `0${ports.closed}`.slice(-5)]);
    return pick(BAD_PORTS);
  };
  const user = (): Bytes => pick([USER, USER, USER, 'root', 'nosuchuser', '', printable(int(1, 16)), randomBytes(int(1, 16), () => int(1, 255)), 'abcdefghijklmnop', '%s%n%x', 'fz\n', '../fz']);
  const password = (): Bytes => pick([PASSWORD, PASSWORD, 'wrong', '', printable(int(1, 16)), randomBytes(int(1, 16), () => int(1, 255)), '%s%s%s%s', 'fz-pass ']);
  const SEEDS = ['true', 'echo hi', 'id -un', 'echo $HOME $USER', 'cat', 'printf "%s\\n" a b', 'echo err >&2', 'exit 3', 'ls -d /', ''];
  const mutate = (text: string) => {
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
  const request = (o: Overrides = {}) => Buffer.concat([field(o.port ?? port()), field(o.user ?? user()), field(o.password ?? password()), field(o.command ?? command())]);

  const kinds = {
    random: () => randomBytes(randomLength()),
    truncated: () => {
      const r = request();
      return r.subarray(0, int(0, r.length - 1));
    },
    huge: () => {
      const which = pick(['port', 'user', 'password', 'command', 'command'] as const);
      const o: Overrides = {};
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
  const WEIGHTS: [keyof typeof kinds, number][] = [['random', 14], ['truncated', 14], ['huge', 8], ['nuls', 12], ['badPort', 8], ['garbageAfter', 12], ['validMutatedCommand', 20], ['nearMiss', 12]];
  const total = WEIGHTS.reduce((s, [, w]) => s + w, 0);

  return function next(): Case {
    let r = rnd() * total;
    let kind = WEIGHTS[0]![0];
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
    const runs = expect.kind === 'request' && validCredentials(expect.fields);
    // A session that runs a command always half-closes (the command's stdin ends).
    const ending: Ending = runs ? 'end' : pick(['end', 'end', 'end', 'end', 'wait', 'wait', 'destroy', 'reset'] as const);
    // Sent whole, or in a few pieces with small pauses.
    const cuts = chance(0.7) ? [] : Array.from({ length: int(1, 3) }, () => int(0, bytes.length)).sort((x, y) => x - y);
    return { kind, bytes, expect, runs, ending, cuts, pam: chance(0.2) };
  };
}

// ------------------------------------------------------------------ in-process
/** What the connection and the session make of the bytes, in process. */
type Fed =
  | { readonly kind: 'refuse'; readonly text: string; readonly stage: FieldName | 'the stderr connection' | 'connect'; readonly consumed: number }
  | { readonly kind: 'incomplete'; readonly stage: FieldName | 'the stderr connection'; readonly consumed: number }
  | { readonly kind: 'request'; readonly request: Request; readonly portNumber: number; readonly consumed: number };

/**
 * The connection's loop (src/io/connection.ts read) without the socket: the bytes
 * offered to the RequestReader in the chunks cuts make, the connect-back done right
 * when it asks for it, and failing where refuses(port).
 */
function feed(bytes: Buffer, cuts: readonly number[], refuses: (port: number) => boolean): Fed {
  const reader = new RequestReader(LIMITS);
  let off = 0;
  let chunk = 0;
  let portNumber = 0;
  for (;;) {
    const end = Math.max(off, cuts[chunk] ?? bytes.length);
    const { consumed, event } = reader.offer(bytes.subarray(off, end));
    off += consumed;
    switch (event.kind) {
      case 'refuse':
        return { kind: 'refuse', text: event.diagnostic, stage: reader.waitingFor, consumed: off };
      case 'connect-back':
        portNumber = event.port;
        if (refuses(portNumber)) return { kind: 'refuse', text: DIAG.connect, stage: 'connect', consumed: off };
        reader.connected();
        break;
      case 'request':
        return { kind: 'request', request: event.request, portNumber, consumed: off };
      case 'more':
        if (end >= bytes.length) return { kind: 'incomplete', stage: reader.waitingFor, consumed: off };
        chunk++;
    }
  }
}

test(`parser: ${PARSER_CASES} generated requests in random chunks agree with the model of SPEC §2 (seed ${SEED})`, () => {
  const ports: Ports = { listener: 40000, closed: 40001 };
  const next = generator(SEED, ports);
  const rnd = mulberry32(SEED ^ 0x5eed);
  const seen: Record<string, number> = {};
  const saw = (what: string) => (seen[what] = (seen[what] ?? 0) + 1);
  for (let i = 0; i < PARSER_CASES; i++) {
    const c = next();
    const cuts = Array.from({ length: Math.floor(rnd() * 6) }, () => Math.floor(rnd() * (c.bytes.length + 1))).sort((x, y) => x - y);
    const got = feed(c.bytes, cuts, (port) => port === ports.closed);
    const want = c.expect;
    const where = `case ${i} (${c.kind}) ${JSON.stringify(c.bytes.subarray(0, 80).toString('latin1'))}`;
    if (want.kind === 'request') {
      if (got.kind !== 'request') assert.fail(`${where}: ${JSON.stringify(got)}`);
      // Never a byte past the command's NUL.
      assert.equal(got.consumed, want.length, where);
      for (const f of ['user', 'password', 'command'] as const) assert.deepEqual(got.request[f], want.fields[f], where);
      // The port dialled back, and the port the request names.
      assert.equal(got.portNumber, want.portNumber, where);
      assert.equal(got.request.stderrPort ?? 0, want.portNumber, where);
      saw('request');
    } else if (want.kind === 'refuse') {
      if (got.kind !== 'refuse') assert.fail(`${where}: expected ${JSON.stringify(want.text)}, got ${JSON.stringify(got)}`);
      assert.deepEqual([got.text, got.stage], [want.text, want.stage], where);
      // The connect-back comes right after the port field: nothing past its NUL is read before it.
      if (want.stage === 'connect') assert.equal(got.consumed, want.portEnd, where);
      assert.ok(got.consumed <= c.bytes.length, where);
      saw(want.text);
    } else {
      if (got.kind !== 'incomplete') assert.fail(`${where}: expected nothing yet, got ${JSON.stringify(got)}`);
      assert.equal(got.stage, want.stage, where);
      assert.equal(got.consumed, c.bytes.length, where);
      saw(`incomplete ${want.stage}`);
    }
  }
  console.log(`# parser outcomes: ${JSON.stringify(seen)}`);
  for (const k of ['request', DIAG.port, DIAG.connect, DIAG.user, DIAG.password, DIAG.command, 'incomplete port', 'incomplete command']) assert.ok((seen[k] ?? 0) > 0, `the generator never made: ${k}`);
});

// ------------------------------------------------------------------ over sockets
/** How one connection went. */
interface Exchange {
  readonly data: Buffer;
  /** 'eof', 'reset', 'timeout', 'limit' (too much data) or another error code. */
  readonly how: string;
  readonly localPort: number | undefined;
  readonly connectedAt: number | undefined;
}

describe(`socket fuzz: ${SOCKET_CASES} connections to rexecd under inetd (seed ${SEED})`, () => {
  let w: World<'shadow' | 'pam' | 'deadline'>;
  let shellDir: string | undefined;
  let listener: Server | undefined;
  let listenerPort: number;
  let closed: HeldPort | undefined;
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
    listenerPort = await listenEphemeral(listener);
    closed = closedPort();
  });
  after(async () => {
    listener?.close();
    closed?.close();
    await w?.stop();
    if (shellDir) rmSync(shellDir, { recursive: true, force: true });
  });

  test('every connection ends as the model says; nothing else reaches the client; every session is logged', async () => {
    const ports: Ports = { listener: listenerPort, closed: closed?.port ?? assert.fail('no closed port') };
    const next = generator(SEED, ports);
    const cases = Array.from({ length: SOCKET_CASES }, next);
    const t0 = performance.now();
    let i = 0;
    const results: Exchange[] = new Array<Exchange>(cases.length);
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (i < cases.length) {
        const k = i++;
        const c = cases[k]!;
        results[k] = await exchange(c.ending === 'wait' && c.expect.kind === 'incomplete' ? w.ports.deadline : c.pam ? w.ports.pam : w.ports.shadow, c);
      }
    }));
    const seconds = (performance.now() - t0) / 1000;

    // The log first: each connection's own lines, found by its client port (a port
    // the kernel reused is told apart by order: connections and log lines alike come
    // in the order they were made).
    await sleep(1500); // the last runs
    const lines = w.logs().map((l) => l.text);
    const byPid = new Map<string, string[]>();
    const pidsOfPort = new Map<string, string[]>();
    const push = <K>(map: Map<K, string[]>, key: K, value: string) => map.set(key, [...(map.get(key) ?? []), value]);
    for (const line of lines) {
      const [, pid, text] = /rexecd\[(\d+)\]: (.*)$/.exec(line) ?? [];
      if (pid === undefined || text === undefined) continue;
      push(byPid, pid, text);
      const port = /^connection from 127\.0\.0\.1 port (\d+)$/.exec(text)?.[1];
      if (port !== undefined) push(pidsOfPort, port, pid);
    }
    const casesOfPort = new Map<number, number[]>();
    results.forEach((r, k) => {
      if (r.localPort === undefined) return;
      casesOfPort.set(r.localPort, [...(casesOfPort.get(r.localPort) ?? []), k]);
    });
    const pidOfCase = new Map<number, string>();
    let ambiguous = 0;
    for (const [port, ks] of casesOfPort) {
      const pids = pidsOfPort.get(String(port)) ?? [];
      ks.sort((x, y) => (results[x]!.connectedAt ?? 0) - (results[y]!.connectedAt ?? 0));
      if (pids.length === ks.length) ks.forEach((k, j) => pidOfCase.set(k, pids[j]!));
      else if (ks.length > 1 || pids.length > 1) ambiguous += ks.length;
    }
    const own = (k: number): string[] => {
      const pid = pidOfCase.get(k);
      return pid === undefined ? [] : (byPid.get(pid) ?? []).filter((l) => !l.startsWith('connection from'));
    };

    const failures: string[] = [];
    const tally: Record<string, number> = {};
    const count = (what: string) => void (tally[what] = (tally[what] ?? 0) + 1);
    cases.forEach((c, k) => {
      const r = results[k]!;
      const text = r.data.toString('latin1');
      const fail = (why: string) => void failures.push(`case ${k} (${c.kind}, ${c.ending}${c.pam ? ', pam' : ''}): ${why}; sent ${JSON.stringify(c.bytes.subarray(0, 60).toString('latin1'))}${c.bytes.length > 60 ? `... (${c.bytes.length} bytes)` : ''}; got ${JSON.stringify(text.slice(0, 200))} (${r.how}); log ${JSON.stringify(own(k))}`);
      // Whatever the ending, only these may ever arrive.
      if (text.length && !VALID_DIAGS.has(text) && !(c.runs && text[0] === '\0')) return fail('bytes that are neither a diagnostic nor a run');
      if (text[0] === '\0' && !c.runs) return fail('a "\\0" without valid credentials');
      if (c.ending === 'destroy' || c.ending === 'reset') return count(`${c.ending} (unobserved)`);
      const e = c.expect;
      if (e.kind === 'refuse') {
        if (text !== `\x01${e.text}\n`) return fail(`expected ${JSON.stringify(e.text)}`);
        return count(e.text);
      }
      if (e.kind === 'incomplete') {
        // On the 1 s service a start-up slowed by load can reach the deadline while
        // dialling the stderr port back: that is "Can't connect" (SPEC §2.2), logged so.
        if (text === `\x01${DIAG.connect}\n` && c.ending === 'wait' && own(k).some((l) => /timeout \(\d+ s\) waiting for the stderr connection from /.test(l))) return count('deadline while dialling back (wait)');
        if (text !== '') return fail('expected nothing (incomplete request)');
        if (r.how !== 'eof' && r.how !== 'reset') return fail('expected a close');
        return count(`incomplete ${e.stage} (${c.ending})`);
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
      const c = cases[k]!;
      if (r.localPort === undefined || !pidOfCase.has(k)) {
        // A connection reset before rexecd starts may never reach it (inetd's libwrap
        // drops it) or fail at getpeername (logged, but without a port to match).
        if (r.localPort !== undefined && !(c.ending === 'reset' || c.ending === 'destroy') && (casesOfPort.get(r.localPort)?.length ?? 0) === 1 && !((pidsOfPort.get(String(r.localPort))?.length ?? 0) > 1)) {
          unlogged++;
          if (unlogged <= 5) failures.push(`case ${k} (${c.kind}, ${c.ending}): no "connection from" line in the log`);
        }
        return;
      }
      if (own(k).length === 0) {
        unlogged++;
        if (unlogged <= 5) failures.push(`case ${k} (${c.kind}, ${c.ending}): no outcome in the log (pid ${pidOfCase.get(k)})`);
      }
    });
    if (process.env.REXECD_FUZZ_DEBUG) for (const [pid, l] of byPid) if (!l.some((x) => x.startsWith('connection from'))) console.log(`# uncorrelated ${pid}: ${l.join(' | ')}`);
    const unexpected = lines.filter((l) => /failed serving|TypeError|RangeError|ReferenceError|SyntaxError/.test(l));
    for (const l of unexpected.slice(0, 10)) failures.push(`log: ${l}`);

    console.log(`# socket fuzz: ${cases.length} connections in ${seconds.toFixed(1)} s (${((seconds * 1000) / cases.length).toFixed(1)} ms each, ${CONCURRENCY} at a time), seed ${SEED}`);
    console.log(`# outcomes: ${JSON.stringify(tally)}`);
    console.log(`# stderr connections made back: ${stderrSeen.connections}; log lines: ${lines.length}; unlogged sessions: ${unlogged}; sessions on a reused client port not told apart: ${ambiguous}`);
    assert.deepEqual(failures.slice(0, 25), [], `${failures.length} failures (seed ${SEED})`);
    assert.ok((tally.run ?? 0) > 0 && (tally[DIAG.login] ?? 0) > 0 && (tally[DIAG.port] ?? 0) > 0, 'the generator covers runs and refusals');
  });
});

/** One connection: send the case's bytes as it says, then end it as it says. */
function exchange(port: number, c: Case): Promise<Exchange> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let size = 0;
    let how = 'eof';
    let localPort: number | undefined;
    let connectedAt: number | undefined;
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
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      size += d.length;
      if (size > 65536) {
        how = 'limit';
        sock.destroy();
        finish();
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (how === 'eof') how = e.code === 'ECONNRESET' ? 'reset' : String(e.code);
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
        await sleep(5);
      }
      if (sock.destroyed) return;
      sock.write(c.bytes.subarray(off));
      if (c.ending === 'end') sock.end();
      else if (c.ending === 'destroy') sock.destroy();
      else if (c.ending === 'reset') sock.resetAndDestroy();
    });
  });
}
