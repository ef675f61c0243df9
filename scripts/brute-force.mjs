// The brute-force figures (issue 13): a real brute-force client, Debian's hydra
// (its `rexec` module), against `rexecd --listen` from one source, with the
// listener's per-source limits at their defaults and turned off; a correct login
// from another source meanwhile; and the listener's memory with the penalty table
// full.  Private test world as in the tests (test/harness/world.ts: the user exists
// only inside a private mount namespace), loopback only, rexecd started with env -i,
// --auth shadow and otherwise its defaults (--fail-delay 2).  Not part of npm test.
//
//   npm run brute-force                      the full run (about 7 minutes)
//   node scripts/brute-force.mjs --quick     a short run (under 2 minutes)
//   options: --window SEC (attack window; full 120, quick 20)  --tasks N (hydra -t, 16)
//            --baseline N (logins without the attack; full 15, quick 5)
//            --sources N (memory: sources penalised = max-sources; full 65536, quick 4096)
//            --phases defaults,off,memory  --wait-load X (wait up to 10 min for a
//            1-minute load average below X first)  --json FILE (default: a temp file)
//
// 1. defaults / off: a listener with the default limits, then one with the limits
//    off (the harness's NO_SOURCE_LIMITS).  Each: --baseline logins with the correct
//    password from 127.0.0.2, one every 2 s, without an attack; then hydra from
//    127.0.0.1 with wrong passwords only for --window seconds while 127.0.0.2 logs in
//    every 2 s.  Evaluated guesses are counted from rexecd's own log (`refused user
//    "NAME" from 127.0.0.1: bad password`, one per password checked), never from
//    hydra's claims (hydra takes a `\001Try again.` for a wrong password); hydra's
//    connections and the answers it got (Try again. / Login incorrect.) come from its
//    -d output.  Checks: with the defaults at most 20 guesses per started minute of
//    the window; every login from 127.0.0.2 succeeds, its median latency during the
//    attack at most twice that without.  With the defaults also: while the attacker's
//    first guesses wait out --fail-delay, connections from other addresses (each from
//    a new one): none may be refused.
// 2. memory: a listener with --per-source-penalties noauth:10m; N sources
//    127.1.x.y each send a bad stderr port (a noauth penalty, so each is refused for
//    10 minutes from then on); VmRSS of the listener (and with its idle workers)
//    before and after, and the listener's CPU per source as the table fills; then, by
//    behaviour, that the table holds exactly N (the first source is still refused, one
//    new source evicts exactly the soonest entry), and what each further new source
//    costs.  The same N connections to a listener without penalties are the control.
//
// Exits non-zero when a check fails.  hydra is installed on demand (apt-get install
// --no-install-recommends hydra: a command-line tool, no service comes with it).
// Needs root, openbsd-inetd and the other packages of scripts/install-test-deps.sh,
// and a build (npm run build).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { harness } from './compile-tests.mjs';
import { preflight } from './preflight.mjs';

const { startWorld, freePort } = harness('world');
const { REXECD, NODE } = harness('paths');
const { raw, request } = harness('clients');
const { NO_SOURCE_LIMITS } = harness('launchers');

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    window: { type: 'string' },
    tasks: { type: 'string' },
    baseline: { type: 'string' },
    sources: { type: 'string' },
    phases: { type: 'string' },
    'wait-load': { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
preflight('brute-force', {
  help: opt.help,
  usage: 'node scripts/brute-force.mjs [--quick] [--window SEC] [--tasks N] [--baseline N] [--sources N] [--phases defaults,off,memory] [--wait-load X] [--json FILE]',
  why: 'private mount namespace, installing hydra, becoming the test user',
  files: ['/usr/sbin/inetd', REXECD],
});
const count = (name, full, quick, max) => {
  const v = opt[name] === undefined ? (opt.quick ? quick : full) : Number(opt[name]);
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`--${name}: ${opt[name]} is not a whole number from 1 to ${max}`);
  return v;
};
const CFG = {
  windowSeconds: count('window', 120, 20, 3600),
  tasks: count('tasks', 16, 16, 64),
  baseline: count('baseline', 15, 5, 1000),
  sources: count('sources', 65536, 4096, 65536 * 200),
};
const PHASES = (opt.phases ?? 'defaults,off,memory').split(',');
for (const p of PHASES) if (!['defaults', 'off', 'memory'].includes(p)) throw new Error(`--phases: unknown phase "${p}"`);

/** The issue's target: at most ~20 evaluated guesses a minute from one source. */
const TARGET_PER_MINUTE = 20;
const PROBE_EVERY_MS = 2000;
const ATTACKER = '127.0.0.1';
const PROBER = '127.0.0.2';
// Shadow, so that each checked password is one `bad password` line; every other
// option is rexecd's default (--fail-delay 2, --timeout 60, --max-connections 64).
const AUTH = ['--auth', 'shadow'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const ms0 = (x) => `${Math.round(x)} ms`;
const mib = (kib) => `${(kib / 1024).toFixed(1)} MiB`;
const text = (b) => b.toString('latin1');
const TRY_AGAIN = '\x01Try again.\n';
const BAD_PORT = '\x01Bad stderr port.\n';

// ------------------------------------------------------------------ hydra
/** Debian's hydra, installed now if missing: a command-line tool; its package starts no service. */
function ensureHydra() {
  const version = () => {
    try {
      return execFileSync('dpkg-query', ['-W', '-f', '${Status} ${Version}', 'hydra'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    } catch {
      return '';
    }
  };
  if (version().startsWith('install ok installed') && existsSync('/usr/bin/hydra')) return { version: version().split(' ').pop(), installedNow: false };
  console.log("brute-force: installing Debian's hydra (apt-get install --no-install-recommends hydra; a command-line tool, the package starts no service)");
  // As scripts/install-test-deps.sh: no service of the host may start during an install.
  const policy = '/usr/sbin/policy-rc.d';
  const madePolicy = !existsSync(policy);
  if (madePolicy) {
    writeFileSync(policy, '#!/bin/sh\nexit 101\n');
    chmodSync(policy, 0o755);
  }
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'hydra'], { stdio: 'inherit', env });
  } finally {
    if (madePolicy) rmSync(policy, { force: true });
  }
  if (!existsSync('/usr/bin/hydra')) throw new Error('hydra is still missing after apt-get install hydra');
  return { version: version().split(' ').pop(), installedNow: true };
}

/**
 * hydra's rexec module from 127.0.0.1 (hydra cannot choose a source address) against
 * PORT, user USER, the wordlist, TASKS connections in parallel, as fast as it can: no
 * -W/-c waits, no -f (it never stops; every password is wrong anyway), -I (no
 * restore-file prompt).  Its own process group, so that stopping it stops every child.
 *
 * What hydra saw comes from its -V -d output.  Its children write unbuffered, a
 * fragment at a time, into one pipe, so lines from different children interleave;
 * the tokens counted here are each written in one piece, and are counted wherever
 * they fall: "[ATTEMPT] " (a password hydra takes as tried), DEBUG_CONNECT_OK (a
 * connection), "[DEBUG] RECV [pid:N] (K bytes)" (an answer: 12 bytes is
 * "\001Try again.\n", 18 "\001Login incorrect.\n").
 */
function runHydra({ port, user, wordlist, tasks, cwd }) {
  const args = ['-l', user, '-P', wordlist, '-s', String(port), '-t', String(tasks), '-I', '-V', '-d', `rexec://${ATTACKER}`];
  const child = spawn('hydra', args, { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const tally = { attempts: 0, connections: 0, connectFailures: 0, answers: 0, tryAgain: 0, loginIncorrect: 0, otherAnswers: 0, found: [], errors: [] };
  const TOKEN = /\[ATTEMPT\] |DEBUG_CONNECT_OK|DEBUG_CONNECT_(?:UNREACHABLE|TIMEOUT)|\[DEBUG\] RECV \[pid:\d+\] \((\d+) bytes\)|\[\d+\]\[rexec\] host:[^\n]*\n|\[ERROR\][^\n]*\n/g;
  const count = (m) => {
    const t = m[0];
    if (t === '[ATTEMPT] ') tally.attempts++;
    else if (t === 'DEBUG_CONNECT_OK') tally.connections++;
    else if (t.startsWith('DEBUG_CONNECT_')) tally.connectFailures++;
    else if (m[1] !== undefined) {
      tally.answers++;
      if (m[1] === '12') tally.tryAgain++;
      else if (m[1] === '18') tally.loginIncorrect++;
      else tally.otherAnswers++;
    } else if (t.includes('[rexec] host:')) tally.found.push(t.trim());
    else if (tally.errors.length < 10) tally.errors.push(t.trim());
  };
  for (const stream of [child.stdout, child.stderr]) {
    // A token may straddle two reads: keep the tail that no match has consumed.
    let rest = '';
    stream.setEncoding('latin1');
    stream.on('data', (d) => {
      const s = rest + d;
      let end = 0;
      for (const m of s.matchAll(TOKEN)) {
        count(m);
        end = m.index + m[0].length;
      }
      rest = s.slice(Math.max(end, s.length - 200));
    });
  }
  const closed = new Promise((r) => child.once('close', (code, signal) => r({ code, signal })));
  return {
    tally,
    closed,
    argv: ['hydra', ...args],
    /** Every process of hydra's group: TERM, then KILL if any is left after 5 s. */
    async stop() {
      const group = (sig) => {
        try {
          process.kill(-child.pid, sig);
        } catch {
          // the group is gone
        }
      };
      group('SIGTERM');
      const done = await Promise.race([closed.then(() => true), sleep(5000).then(() => false)]);
      if (!done) {
        group('SIGKILL');
        await closed;
      }
    },
  };
}

// ------------------------------------------------------------------ observation
const statusOf = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/status`, 'latin1');
  } catch {
    return '';
  }
};
const rssKiB = (pid) => Number(/^VmRSS:\s*(\d+)/m.exec(statusOf(pid))?.[1] ?? 0);
/** The listener's CPU time so far (user + system), in seconds. */
const cpuSeconds = (pid) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14, 15) in clock ticks
};
/** The listener's children (its pre-started workers), with their VmRSS. */
const childrenOf = (pid) => {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = statusOf(d);
    if (Number(/^PPid:\s*(\d+)/m.exec(s)?.[1]) === pid) out.push({ pid: Number(d), rss: rssKiB(d) });
  }
  return out;
};

// ------------------------------------------------------------------ the world
const USER = { name: 'bruted', password: `right-${Math.random().toString(36).slice(2, 10)}`, method: 'yescrypt', uid: 4861 };
const machine = {
  date: new Date().toISOString(),
  nproc: Number(execFileSync('nproc').toString().trim()),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  kernel: execFileSync('uname', ['-r']).toString().trim(),
  loadavgStart: undefined,
};
if (opt['wait-load']) {
  const limit = Number(opt['wait-load']);
  const end = Date.now() + 10 * 60_000;
  while (loadavg()[0] >= limit && Date.now() < end) {
    console.log(`brute-force: load average ${loadavg()[0].toFixed(2)} >= ${limit}: waiting (up to 10 min in all)`);
    await sleep(15_000);
  }
}
machine.loadavgStart = loadavg();
const hydra = PHASES.some((p) => p !== 'memory') ? ensureHydra() : undefined;

const tmp = mkdtempSync(join(tmpdir(), 'rexecd-brute-'));
const WORDLIST = join(tmp, 'wrong-passwords.txt');
// Wrong passwords only (the right one is random and longer); hydra starts over if it runs out.
writeFileSync(WORDLIST, Array.from({ length: 300_000 }, (_, i) => `guess${i}`).join('\n') + '\n');

const world = await startWorld({ users: [USER], services: {} });
const started = new Set();
let stopping;
const cleanUp = () =>
  (stopping ??= (async () => {
    for (const s of started) await s.stop();
    await world.stop();
    rmSync(tmp, { recursive: true, force: true });
  })());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`brute-force: ${sig}, stopping`);
    cleanUp().finally(() => process.exit(130));
  });
}
const logs = () => world.logs();

/** rexecd --listen 127.0.0.1:PORT in the world's namespace, env -i; only `args` beyond rexecd's defaults. */
async function startRexecd(args) {
  const port = await freePort();
  const argv = ['-m', '-t', String(world.inetdPid), '--', 'env', '-i', NODE, REXECD, '--listen', `127.0.0.1:${port}`, ...AUTH, ...args];
  const child = spawn('nsenter', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const listener = {
    port,
    pid: child.pid, // nsenter -m and env exec: the listener itself
    argv: ['rexecd', '--listen', `127.0.0.1:${port}`, ...AUTH, ...args],
    async stop() {
      started.delete(listener);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (!(await Promise.race([new Promise((r) => child.once('exit', () => r(true))), sleep(5000).then(() => false)]))) child.kill('SIGKILL');
    },
    alive: () => child.exitCode === null && child.signalCode === null,
  };
  started.add(listener);
  const end = Date.now() + 15_000;
  while (!out.includes('listening on')) {
    if (!listener.alive() || Date.now() > end) {
      await listener.stop();
      throw new Error(`the listener did not start: ${out.trim()}`);
    }
    await sleep(20);
  }
  return listener;
}

/** One login with the correct password from PROBER: { ok, ms, answer }. */
async function login(port) {
  try {
    const r = await raw({ port, localAddress: PROBER, steps: [request({ user: USER.name, password: USER.password, command: 'echo in' })], timeout: 15_000 });
    const answer = text(r.main);
    return { ok: answer === '\0in\n', ms: r.ms, answer: answer.slice(0, 40), at: performance.now() };
  } catch (e) {
    return { ok: false, ms: NaN, answer: `error: ${e.message}`, at: performance.now() };
  }
}

/** A login every PROBE_EVERY_MS (the next at once if one took longer) until `until()`, or `n` of them. */
async function probeLogins(port, { n = Infinity, until = () => false }) {
  const results = [];
  const t0 = performance.now();
  for (let i = 0; i < n && !until(); i++) {
    const due = t0 + i * PROBE_EVERY_MS;
    if (due > performance.now()) await sleep(due - performance.now());
    if (until()) break;
    results.push(await login(port));
  }
  return results;
}

const latency = (rs) => {
  const ms = rs.filter((r) => r.ok).map((r) => r.ms);
  return { n: rs.length, ok: rs.filter((r) => r.ok).length, median: median(ms), max: ms.length ? Math.max(...ms) : NaN, failures: rs.filter((r) => !r.ok).map((r) => r.answer), ms: rs.map((r) => Math.round(r.ms)) };
};

/**
 * "Its normal latency": the median during the attack at most twice the median
 * without it (or 50 ms more, for the very fast).  Not the maximum: on a shared
 * machine one slow login says more about the neighbours than about rexecd.
 */
const normalLatency = (quiet, during) => during.median <= Math.max(2 * quiet.median, quiet.median + 50);

const rows = [];
const results = { machine, config: { ...CFG, quick: opt.quick, phases: PHASES, auth: AUTH, probeEveryMs: PROBE_EVERY_MS }, hydra };
function row(phase, what, result, pass) {
  rows.push({ phase, what, result, pass });
  console.log(`  ${pass === undefined ? '    ' : pass ? 'ok  ' : 'FAIL'} ${phase}: ${what}: ${result}`);
}

// ------------------------------------------------------------------ 1. guessing
/** Bursts of evaluated guesses: runs of log lines less than 5 s apart, as "N at A–B s". */
function bursts(seconds) {
  const out = [];
  for (const s of seconds) {
    const last = out.at(-1);
    if (last && s - last.to < 5) {
      last.to = s;
      last.n++;
    } else out.push({ from: s, to: s, n: 1 });
  }
  return out;
}

async function attackPhase(name, limitArgs) {
  const windowMs = CFG.windowSeconds * 1000;
  console.log(`${name}: rexecd --listen ${limitArgs.join(' ') || '(limits at their defaults)'}; hydra -t ${CFG.tasks} for ${CFG.windowSeconds} s`);
  const L = await startRexecd(limitArgs);
  try {
    // One login first: what is opened once (syslog, the first worker) is open before timing.
    await login(L.port);
    const quiet = latency(await probeLogins(L.port, { n: CFG.baseline }));

    const mark = logs().length;
    const cpu0 = cpuSeconds(L.pid);
    const t0 = performance.now();
    const t0Wall = Date.now();
    const attackOver = () => performance.now() - t0 >= windowMs;
    const tallies = [];
    let argv;
    const attack = (async () => {
      // hydra stops when the wordlist runs out (refused connections are quick): start it again.
      while (!attackOver()) {
        const h = runHydra({ port: L.port, user: USER.name, wordlist: WORDLIST, tasks: CFG.tasks, cwd: tmp });
        argv = h.argv;
        tallies.push(h.tally);
        const ended = await Promise.race([h.closed.then(() => true), sleep(Math.max(0, windowMs - (performance.now() - t0))).then(() => false)]);
        if (!ended) await h.stop();
        else if (h.tally.connections === 0) throw new Error(`hydra ended without a connection: ${h.tally.errors.join(' ') || `exit ${(await h.closed).code}`}`);
      }
    })();
    attack.catch(() => {}); // awaited below, after the logins
    const during = latency(await probeLogins(L.port, { until: attackOver }));
    await attack;
    const cpu = cpuSeconds(L.pid) - cpu0;
    const seconds = (performance.now() - t0) / 1000;
    // Guesses in flight when hydra stopped are still checked: wait for the last line.
    const isGuess = (l) => l.text.includes(`refused user "${USER.name}" from ${ATTACKER}: `);
    for (let n = -1; n !== logs().filter(isGuess).length; ) {
      n = logs().filter(isGuess).length;
      await sleep(3000);
    }
    const lines = logs().slice(mark);
    const guesses = lines.filter(isGuess);
    const guessAt = guesses.map((l) => (l.received.getTime() - t0Wall) / 1000);
    const reasons = {};
    for (const g of guesses) {
      const reason = g.text.replace(/.*: /, '');
      reasons[reason] = (reasons[reason] ?? 0) + 1;
    }
    const hydraTotal = {};
    for (const t of tallies) for (const [k, v] of Object.entries(t)) if (typeof v === 'number') hydraTotal[k] = (hydraTotal[k] ?? 0) + v;
    const hydraErrors = tallies.flatMap((t) => t.errors);
    const found = tallies.flatMap((t) => t.found);
    const message = (l) => l.text.replace(/^.*?rexecd\[\d+\]: /, '');
    // The listener's own lines: penalties, and refusals (once a minute per source and kind).
    const listenerLines = lines.map(message).filter((m) => /^penalty for |^refused \d/.test(m));
    const proberRefused = lines.map(message).filter((m) => m.startsWith(`refused ${PROBER}:`) || m.includes(`from ${PROBER}: `));
    const perMinute = (guesses.length * 60) / CFG.windowSeconds;
    const r = {
      listener: L.argv,
      hydra: argv,
      hydraRuns: tallies.length,
      windowSeconds: CFG.windowSeconds,
      measuredSeconds: seconds,
      evaluatedGuesses: guesses.length,
      perMinute,
      reasons,
      bursts: bursts(guessAt).map((b) => ({ n: b.n, from: Number(b.from.toFixed(1)), to: Number(b.to.toFixed(1)) })),
      hydraClient: hydraTotal,
      hydraErrors,
      found,
      listenerCpuSeconds: cpu,
      listenerLogLines: listenerLines.slice(0, 20),
      proberRefused,
      quiet,
      during,
    };
    results[name] = r;

    const profile = r.bursts.map((b) => `${b.n} at ${b.from.toFixed(0)}–${b.to.toFixed(0)} s`).join(', ');
    const h = hydraTotal;
    const perStartedMinute = TARGET_PER_MINUTE * Math.ceil(CFG.windowSeconds / 60);
    if (name === 'defaults') {
      row(name, `evaluated guesses from one source in ${CFG.windowSeconds} s (rexecd's log)`, `${guesses.length} (${perMinute.toFixed(1)}/min): ${profile || 'none'}`, guesses.length <= perStartedMinute && guesses.length > 0);
    } else {
      const base = results.defaults?.perMinute;
      row(name, `evaluated guesses from one source in ${CFG.windowSeconds} s (rexecd's log)`, `${guesses.length} (${perMinute.toFixed(1)}/min)${base ? `, ${(perMinute / Math.max(base, 0.1)).toFixed(0)}× the defaults` : ''}`, base === undefined ? guesses.length > 0 : perMinute > 3 * base);
    }
    row(name, `hydra -t ${CFG.tasks}: connections / answers Try again. / Login incorrect. / other`, `${h.connections} / ${h.tryAgain} / ${h.loginIncorrect} / ${h.otherAnswers} (hydra "tried" ${h.attempts} passwords; ${h.connectFailures} connects failed)`, found.length === 0 && h.connections > 0 && h.otherAnswers === 0);
    row(name, 'listener CPU during the attack', `${cpu.toFixed(1)} s in ${seconds.toFixed(0)} s (${((100 * cpu) / seconds).toFixed(0)} % of one core)`, undefined);
    row(name, `logins from ${PROBER}, one every 2 s: without / during the attack`, `${quiet.ok}/${quiet.n} ok, ${ms0(quiet.median)} median, ${ms0(quiet.max)} max / ${during.ok}/${during.n} ok, ${ms0(during.median)} median, ${ms0(during.max)} max`, quiet.ok === quiet.n && during.ok === during.n && during.n > 0 && normalLatency(quiet, during));
    for (const f of during.failures.slice(0, 3)) console.log(`    a login during the attack got: ${JSON.stringify(f)}`);
    for (const l of proberRefused.slice(0, 3)) console.log(`    log: ${l}`);
  } finally {
    await L.stop();
  }
}

/**
 * While the attacker's first guesses wait out --fail-delay they are unauthenticated
 * connections, as many as --per-source-max-startups allows: do other addresses get
 * in meanwhile?  Each probe comes from a new address (127.0.9.N), sends nothing and
 * closes after 100 ms: a refusal comes at once or not at all.
 */
async function earlyDropPhase() {
  const L = await startRexecd([]);
  let h;
  try {
    await login(L.port);
    const mark = logs().length;
    h = runHydra({ port: L.port, user: USER.name, wordlist: WORDLIST, tasks: CFG.tasks, cwd: tmp });
    const t0 = performance.now();
    // The attacker holds its maximum once the listener refuses it for that.
    const holds = (l) => l.text.includes(`refused ${ATTACKER}: `) && l.text.includes(' unauthenticated connections from ');
    while (!logs().slice(mark).some(holds) && performance.now() - t0 < 3000) await sleep(5);
    const held = performance.now() - t0;
    const answers = [];
    while (performance.now() - t0 < held + 1500) {
      const r = await raw({ port: L.port, localAddress: `127.0.9.${answers.length + 1}`, steps: [{ delay: 100 }, { destroy: true }], timeout: 500 });
      answers.push(text(r.main));
    }
    const lines = logs().slice(mark).map((l) => l.text.replace(/^.*?rexecd\[\d+\]: /, ''));
    const dropped = answers.filter((a) => a === TRY_AGAIN).length;
    results.earlyDrop = { heldAfterMs: held, probes: answers.length, dropped, lines: lines.filter((m) => m.startsWith('refused ')).slice(0, 10) };
    row('defaults', `connections from other addresses while the attacker's first guesses wait out --fail-delay`, `${dropped}/${answers.length} got Try again. (${lines.filter((m) => /^refused 127\.0\.9\./.test(m))[0] ?? 'no refusal logged'})`, dropped === 0 && answers.length > 0);
  } finally {
    await h?.stop();
    await L.stop();
  }
}

// ------------------------------------------------------------------ 2. memory
/** The Nth source of the fill: 127.1.0.0, 127.1.0.1, ... (65536 per /16, then 127.2...). */
const sourceAddress = (i) => `127.${1 + Math.floor(i / 65536)}.${(i >> 8) & 255}.${i & 255}`;
/** A request that is not one (stderr port 80): answered Bad stderr port., a noauth penalty. */
async function badPort(port, from) {
  try {
    const r = await raw({ port, localAddress: from, steps: [Buffer.from('80\0')], timeout: 10_000 });
    return text(r.main);
  } catch (e) {
    return `error: ${e.message}`;
  }
}

/** fn(i) for i from `from` to `to` - 1, `parallel` at a time. */
async function inParallel(from, to, parallel, fn) {
  let next = from;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < to) await fn(next++);
  }));
}

const answerName = (a) => (a === BAD_PORT ? 'Bad stderr port.' : a === TRY_AGAIN ? 'Try again.' : a.slice(0, 60));

/**
 * A listener with `args`; N sources each send one bad stderr port, 8 at a time
 * (fewer than --max-startups' start, 10: no random early drop).  The first source
 * goes alone and first, so that its penalty (if any) is the soonest to expire.
 * VmRSS before and 2 s after; the listener's CPU per source, by chunk.  `then(L)`
 * runs before the listener stops.
 */
async function fill(args, then) {
  const n = CFG.sources;
  const L = await startRexecd(args);
  try {
    await login(L.port); // the first worker and the syslog socket, as in use
    await sleep(2000);
    const sample = () => {
      const workers = childrenOf(L.pid);
      const own = rssKiB(L.pid);
      return { listenerKiB: own, workers: workers.length, withWorkersKiB: own + workers.reduce((a, w) => a + w.rss, 0) };
    };
    const before = sample();
    const mark = logs().length;
    const answers = {};
    const tally = (a) => (answers[answerName(a)] = (answers[answerName(a)] ?? 0) + 1);
    const CHUNK = Math.min(4096, n);
    const PARALLEL = 8;
    const chunks = [];
    const t0 = performance.now();
    let chunk = { at: t0, cpu: cpuSeconds(L.pid) };
    let done = 0;
    const finished = () => {
      if (++done % CHUNK !== 0) return;
      const now = { at: performance.now(), cpu: cpuSeconds(L.pid) };
      chunks.push({ wallMs: (now.at - chunk.at) / CHUNK, cpuMs: ((now.cpu - chunk.cpu) * 1000) / CHUNK });
      chunk = now;
      if (done % (CHUNK * 4) === 0) console.log(`  ${done} sources, ${((now.at - t0) / 1000).toFixed(0)} s`);
    };
    tally(await badPort(L.port, sourceAddress(0)));
    finished();
    await sleep(20);
    await inParallel(1, n, PARALLEL, async (i) => {
      tally(await badPort(L.port, sourceAddress(i)));
      finished();
    });
    const seconds = (performance.now() - t0) / 1000;
    // The log lines of the last connections arrive a moment later.
    const isPenalty = (l) => / penalty for 127\.\d+\.\d+\.\d+\/32: refused for \d+ s/.test(l.text);
    const penalties = () => logs().slice(mark).filter(isPenalty).length;
    await sleep(2000);
    const after = sample();
    return { listener: L.argv, sources: n, parallel: PARALLEL, chunk: CHUNK, answers, penaltyLines: penalties(), seconds, chunks, before, after, ...(await then?.(L)), alive: L.alive() };
  } finally {
    await L.stop();
  }
}

async function memoryPhase() {
  const n = CFG.sources;
  const bound = n === 65536 ? '' : `,max-sources:${n}`;
  const tableArgs = ['--per-source-penalties', `noauth:10m${bound}`];
  const controlArgs = ['--per-source-penalties', 'no'];
  console.log(`memory: rexecd --listen ${tableArgs.join(' ')}; ${n} sources each penalised once`);
  const table = await fill(tableArgs, async (L) => {
    // The table holds exactly n: the first (soonest to expire) is still there...
    const firstStillRefused = await badPort(L.port, sourceAddress(0));
    // ...one more source is admitted, and its penalty evicts exactly that first entry.
    const outsider = `127.${2 + Math.floor(n / 65536)}.0.1`;
    const outsiderAnswer = await badPort(L.port, outsider);
    const secondAnswer = await badPort(L.port, sourceAddress(1));
    const firstAnswer = await badPort(L.port, sourceAddress(0));
    // With the table full, what each new source costs (overflow:permissive: the
    // soonest entry is forgotten for it): CHURN more sources, 127.(3+).x.y.
    const CHURN = Math.min(2048, n);
    const churnAnswers = {};
    const cpu0 = cpuSeconds(L.pid);
    const t0 = performance.now();
    await inParallel(0, CHURN, 8, async (i) => {
      const a = answerName(await badPort(L.port, `127.${3 + Math.floor(n / 65536)}.${(i >> 8) & 255}.${i & 255}`));
      churnAnswers[a] = (churnAnswers[a] ?? 0) + 1;
    });
    const churn = { sources: CHURN, answers: churnAnswers, cpuMs: ((cpuSeconds(L.pid) - cpu0) * 1000) / CHURN, wallMs: (performance.now() - t0) / CHURN };
    return { bound: { firstStillRefused, outsider, outsiderAnswer, secondAnswer, firstAnswer }, churn };
  });
  console.log(`memory: the same ${n} connections to rexecd --listen ${controlArgs.join(' ')} (no table: what the connections alone cost)`);
  const control = await fill(controlArgs);
  results.memory = { table, control };

  const bad = table.answers['Bad stderr port.'] ?? 0;
  row('memory', `${n} sources (127.1.x.y…) each send a bad stderr port (noauth:10m)`, `${bad}/${n} answered Bad stderr port., ${table.penaltyLines} "penalty for …" log lines; ${table.seconds.toFixed(0)} s`, bad === n && table.penaltyLines === n);
  const { firstStillRefused: f0, outsider, outsiderAnswer: o, secondAnswer: s1, firstAnswer: f1 } = table.bound;
  const said = (a) => (a === TRY_AGAIN ? 'Try again.' : a === BAD_PORT ? 'served' : JSON.stringify(a));
  row('memory', 'the table is full: the first source is still refused; one more evicts exactly it', `first ${said(f0)}; ${outsider} ${said(o)}; then second ${said(s1)}, first ${said(f1)}`, f0 === TRY_AGAIN && o === BAD_PORT && s1 === TRY_AGAIN && f1 === BAD_PORT);
  const cpu = (r) => `${r.chunks[0]?.cpuMs.toFixed(2)} ms → ${r.chunks.at(-1)?.cpuMs.toFixed(2)} ms`;
  row('memory', `listener CPU per source, first → last ${table.chunk}: with the table / without`, `${cpu(table)} / ${cpu(control)}`, undefined);
  const c = table.churn;
  row('memory', `table full: ${c.sources} more new sources, each evicting the soonest entry`, `${c.answers['Bad stderr port.'] ?? 0}/${c.sources} served; listener CPU ${c.cpuMs.toFixed(2)} ms a source (wall ${c.wallMs.toFixed(2)} ms, 8 at a time)`, undefined);
  const grew = (r) => r.after.listenerKiB - r.before.listenerKiB;
  const tableCost = grew(table) - grew(control);
  row('memory', 'listener VmRSS before → after: with the table / same connections without', `${mib(table.before.listenerKiB)} → ${mib(table.after.listenerKiB)} (+${mib(grew(table))}) / ${mib(control.before.listenerKiB)} → ${mib(control.after.listenerKiB)} (+${mib(grew(control))}): the table ≈ ${mib(tableCost)}, ${((tableCost * 1024) / n).toFixed(0)} bytes a source`, table.alive && control.alive && grew(table) < 128 * 1024);
  row('memory', 'listener and its idle workers, VmRSS before → with the table full', `${mib(table.before.withWorkersKiB)} (${table.before.workers} worker${table.before.workers === 1 ? '' : 's'}) → ${mib(table.after.withWorkersKiB)} (${table.after.workers})`, undefined);
}

// ------------------------------------------------------------------ run
const T0 = performance.now();
try {
  if (PHASES.includes('defaults')) {
    await attackPhase('defaults', []);
    await earlyDropPhase();
  }
  if (PHASES.includes('off')) await attackPhase('off', NO_SOURCE_LIMITS);
  if (PHASES.includes('memory')) await memoryPhase();
} finally {
  await cleanUp();
}
results.seconds = (performance.now() - T0) / 1000;
results.loadavgEnd = loadavg();
results.rows = rows;

const failed = rows.filter((r) => r.pass === false).length;
const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
const table = [
  `Measured ${machine.date.slice(0, 10)} on ${machine.nproc} cores (${machine.cpu}), Node ${machine.node}, ${opt.quick ? '--quick' : 'full run'} (${results.seconds.toFixed(0)} s), hydra ${hydra?.version ?? '-'} -t ${CFG.tasks}; load average ${load(machine.loadavgStart)} at the start, ${load(results.loadavgEnd)} at the end:`,
  '',
  '| phase | what | result | |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.phase} | ${r.what.replace(/\|/g, '\\|')} | ${r.result.replace(/\|/g, '\\|')} | ${r.pass === undefined ? '' : r.pass ? 'ok' : '**FAIL**'} |`),
].join('\n');
console.log(`\n${table}\n`);
const jsonPath = opt.json ?? join(tmpdir(), `rexecd-brute-force-${Date.now()}.json`);
writeFileSync(jsonPath, JSON.stringify(results, null, 2));
console.log(`brute-force: figures in ${jsonPath}`);
console.log(failed ? `brute-force: ${failed} check(s) failed` : 'brute-force: every check passed');
process.exit(failed ? 1 : 0);
