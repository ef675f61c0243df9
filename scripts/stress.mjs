// The stress run (issue 6): rexecd under a private openbsd-inetd (loopback only,
// test users only inside a private mount namespace; see test/harness/world.ts),
// then the standalone listener.  Every phase is bounded in count and in time, and
// ends with a line of the summary table.
//
//   npm run stress                       the full run (about 10 minutes on 2 cores)
//   node scripts/stress.mjs --quick      a short run (about a minute)
//   options: --idle N --idle-rate N/s --streams N --mib N --logins N
//            --max-connections N --phases idle,streams,logins,listen --json FILE
//
// 1. idle:    N connections that send nothing, to rexecd with --timeout 5: each is
//             closed at its deadline without a byte; the rexecd processes and
//             MemAvailable (/proc/meminfo) come back to where they were.
// 2. streams: N sessions at once, each piping MiB through `cat`: every SHA-256 matches.
// 3. logins:  N logins one after another (SHA-512 user, --auth shadow, `true`): no
//             growth in inetd's fds or in processes, no zombie.
// 4. listen:  rexecd --listen 127.0.0.1:PORT --max-connections N: N idle connections
//             hold every slot, the excess gets "\001Try again.\n" and a close, and the
//             listener serves logins again once the idle ones leave.
// Needs root and the packages of scripts/install-test-deps.sh.
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { harness } from './compile-tests.mjs';
import { preflight } from './preflight.mjs';

const { startWorld, freePort } = harness('world');
const { REXECD, NODE } = harness('paths');
const { NO_SOURCE_LIMITS } = harness('launchers');

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    idle: { type: 'string' },
    streams: { type: 'string' },
    mib: { type: 'string' },
    logins: { type: 'string' },
    'max-connections': { type: 'string' },
    'idle-rate': { type: 'string' },
    phases: { type: 'string' },
    json: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
preflight('stress', {
  help: opt.help,
  usage: 'node scripts/stress.mjs [--quick] [--idle N] [--idle-rate N] [--streams N] [--mib N] [--logins N] [--max-connections N] [--phases LIST] [--json FILE]',
  why: 'private mount namespace, inetd, becoming the test user',
  files: ['/usr/sbin/inetd', REXECD],
});
const count = (name, full, quick) => {
  const v = opt[name] === undefined ? (opt.quick ? quick : full) : Number(opt[name]);
  if (!Number.isInteger(v) || v < 1 || v > 100_000) throw new Error(`--${name}: ${opt[name]} is not a count from 1 to 100000`);
  return v;
};
const CFG = {
  idle: count('idle', 500, 100),
  streams: count('streams', 200, 20),
  mib: count('mib', 10, 10),
  logins: count('logins', 10_000, 1000),
  maxConnections: count('max-connections', 20, 10),
  idleRate: count('idle-rate', 50, 50),
};
const PHASES = (opt.phases ?? 'idle,streams,logins,listen').split(',');
const IDLE_TIMEOUT = 5;
const IDLE_WAVE = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.round(q * (s.length - 1)))] : NaN;
};
const memAvailable = () => Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
const mib = (bytes) => `${(bytes / 1048576).toFixed(0)} MiB`;
const s1 = (ms) => `${(ms / 1000).toFixed(1)} s`;

// A uid of its own: the test worlds number their users from 4242, and another world may be running.
const USER = { name: 'stressy', password: 'stress-pw', method: 'sha512crypt', uid: 4797 };
const world = await startWorld({
  users: [USER],
  nofile: 8192,
  services: {
    idle: ['--auth', 'shadow', '--timeout', String(IDLE_TIMEOUT)],
    session: ['--auth', 'shadow', '--fail-delay', '0', '--timeout', '60'],
  },
});
const uid = world.users[USER.name].uid;
let stopping;
const stopWorld = () => (stopping ??= world.stop());
const started = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`stress: ${sig}, stopping`);
    for (const c of started) if (c.exitCode === null) c.kill('SIGTERM');
    stopWorld().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------ observation
const inetd = world.inetdPid;
/** Direct children of our inetd: rexecd processes, or the shells they became. */
const children = () => {
  try {
    return execFileSync('ps', ['-o', 'pid=,stat=', '--ppid', String(inetd)]).toString().trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/));
  } catch {
    return [];
  }
};
const fdCount = (pid) => readdirSync(`/proc/${pid}/fd`).length;
/** Processes of the stress user, anywhere. */
const userProcesses = () => {
  try {
    return execFileSync('ps', ['-o', 'pid=', '-u', String(uid)]).toString().trim().split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
};
const zombies = () => children().filter(([, stat]) => stat.startsWith('Z')).length;
async function settle(ms = 15000) {
  const end = Date.now() + ms;
  while ((children().length > 0 || userProcesses() > 0) && Date.now() < end) await sleep(100);
}

/** A raw session: send `head`, then stream `body` (or nothing), half-close; collect everything. */
function session(port, { head, idle = false, timeout = 120_000, onData, host = '127.0.0.1' }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const sock = connect({ port, host });
    let bytes = 0;
    const first = [];
    let how = 'eof';
    const timer = setTimeout(() => {
      how = 'timeout';
      sock.destroy();
    }, timeout);
    sock.on('data', (d) => {
      if (bytes < 64) first.push(d.subarray(0, 64 - bytes));
      bytes += d.length;
      onData?.(d);
    });
    sock.on('error', (e) => {
      if (how === 'eof') how = e.code;
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve({ bytes, first: Buffer.concat(first), how, ms: performance.now() - t0 });
    });
    if (!idle) sock.once('connect', () => head(sock));
  });
}
const request = (command) => Buffer.from(`\0${USER.name}\0${USER.password}\0${command}\0`, 'latin1');

const rows = [];
const results = { config: CFG, startedAt: new Date().toISOString() };
function row(phase, what, result, pass) {
  rows.push({ phase, what, result, pass });
  console.log(`  ${pass ? 'ok  ' : 'FAIL'} ${phase}: ${what}: ${result}`);
}

// ------------------------------------------------------------------ 1. idle
async function idlePhase() {
  const n = CFG.idle;
  console.log(`idle: ${n} connections that send nothing (--timeout ${IDLE_TIMEOUT})`);
  await settle();
  const before = { mem: memAvailable(), children: children().length };
  let minMem = before.mem;
  let maxChildren = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      minMem = Math.min(minMem, memAvailable());
      maxChildren = Math.max(maxChildren, children().length);
      await sleep(200);
    }
  })();
  // Opened at a steady rate: all at once, the first few hundred Node start-ups starve
  // inetd of CPU, its accept queue (backlog 128) overflows and the kernel drops SYNs,
  // which is the client's SYN backoff, not rexecd's deadline.
  const t0 = performance.now();
  const pending = [];
  for (let i = 0; i < n; i++) {
    pending.push(session(world.ports.idle, { idle: true, timeout: (IDLE_TIMEOUT + 90) * 1000 }));
    if ((i + 1) % IDLE_WAVE === 0) await sleep((1000 * IDLE_WAVE) / CFG.idleRate);
  }
  const all = await Promise.all(pending);
  const wall = performance.now() - t0;
  await settle();
  sampling = false;
  await sampler;
  // Freed memory shows up over a moment (and other work on the machine moves the
  // figure both ways): the best of a few samples over 3 s.
  let afterMem = 0;
  for (let i = 0; i < 6; i++) {
    await sleep(500);
    afterMem = Math.max(afterMem, memAvailable());
  }
  const after = { mem: afterMem, children: children().length };
  const timeouts = world.logs().filter((l) => /timeout \(5 s\) waiting for port from 127\.0\.0\.1/.test(l.text)).length;
  const silent = all.filter((r) => r.bytes === 0 && (r.how === 'eof' || r.how === 'ECONNRESET')).length;
  const times = all.map((r) => r.ms);
  const used = before.mem - minMem;
  const leak = before.mem - after.mem;
  results.idle = { n, wall, closeMs: { min: Math.min(...times), median: median(times), max: Math.max(...times) }, before, after, minMem, maxChildren, timeouts, silent };
  row('idle', `${n} connections, nothing sent, opened at ${CFG.idleRate}/s`, `${silent}/${n} closed without a byte; close after ${s1(Math.min(...times))} … ${s1(median(times))} (median) … ${s1(Math.max(...times))}`, silent === n && Math.min(...times) >= IDLE_TIMEOUT * 1000 - 100 && Math.max(...times) <= 2 * IDLE_TIMEOUT * 1000);
  row('idle', 'timeouts logged', `${timeouts}/${n} "timeout (5 s) waiting for port"`, timeouts === n);
  row('idle', 'rexecd processes before / peak / after', `${before.children} / ${maxChildren} / ${after.children}`, after.children === before.children);
  // Other work on the machine moves MemAvailable too: allow 10 % of the peak use, at least 64 MiB.
  row('idle', 'MemAvailable before / lowest / after', `${mib(before.mem)} / ${mib(minMem)} (${mib(used)} in use, ${mib(used / Math.max(1, maxChildren))} per rexecd at the peak) / ${mib(after.mem)} (${leak >= 0 ? '-' : '+'}${mib(Math.abs(leak))})`, leak < Math.max(64 * 1048576, 0.1 * used));
}

// ------------------------------------------------------------------ 2. streams
async function streamPhase() {
  const n = CFG.streams;
  const size = CFG.mib * 1048576;
  console.log(`streams: ${n} sessions at once, ${CFG.mib} MiB each through cat`);
  const CHUNK = 65536;
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, () => {
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let status;
    let received = 0;
    return session(world.ports.session, {
      timeout: 300_000,
      head: (sock) => {
        sock.write(request('cat'));
        let left = size;
        const pump = () => {
          while (left > 0) {
            const chunk = randomBytes(Math.min(CHUNK, left));
            left -= chunk.length;
            sent.update(chunk);
            if (!sock.write(chunk)) return sock.once('drain', pump);
          }
          sock.end();
        };
        pump();
      },
      onData: (d) => {
        if (status === undefined) {
          status = d[0];
          d = d.subarray(1);
        }
        received += d.length;
        got.update(d);
      },
    }).then((r) => ({ ...r, status, received, match: received === size && sent.digest('hex') === got.digest('hex') }));
  }));
  const wall = performance.now() - t0;
  const ok = all.filter((r) => r.status === 0 && r.match).length;
  results.streams = { n, mib: CFG.mib, wall, ok, failures: all.filter((r) => !(r.status === 0 && r.match)).slice(0, 5) };
  row('streams', `${n} sessions × ${CFG.mib} MiB in and out through cat, at once`, `${ok}/${n} SHA-256 match; ${s1(wall)}, ${((2 * n * size) / 1048576 / (wall / 1000)).toFixed(0)} MiB/s in+out`, ok === n);
  await settle();
}

// ------------------------------------------------------------------ 3. logins
async function loginPhase() {
  const n = CFG.logins;
  console.log(`logins: ${n} one after another`);
  await settle();
  // One login first, so that everything lazily opened is open before we count.
  await session(world.ports.session, { head: (s) => s.end(request('true')) });
  await settle();
  const before = { inetdFds: fdCount(inetd), ownFds: fdCount(process.pid), children: children().length, userProcesses: userProcesses(), zombies: zombies() };
  const times = [];
  let ok = 0;
  const bad = [];
  const t0 = performance.now();
  const budget = 30 * 60_000;
  for (let i = 0; i < n && performance.now() - t0 < budget; i++) {
    const r = await session(world.ports.session, { timeout: 30_000, head: (s) => s.end(request('true')) });
    times.push(r.ms);
    if (r.bytes === 1 && r.first[0] === 0 && r.how === 'eof') ok++;
    else if (bad.length < 5) bad.push({ i, first: r.first.toString('latin1'), how: r.how });
    if ((i + 1) % 1000 === 0) console.log(`  ${i + 1} logins, ${s1(performance.now() - t0)}`);
  }
  const wall = performance.now() - t0;
  await settle();
  await sleep(500);
  const after = { inetdFds: fdCount(inetd), ownFds: fdCount(process.pid), children: children().length, userProcesses: userProcesses(), zombies: zombies() };
  // What rexecd said about anything that went wrong.
  const why = world.logs().filter((l) => /failed serving|failed to start|configuration error|cannot /.test(l.text)).map((l) => l.text);
  results.logins = { n, done: times.length, ok, wall, ms: { median: median(times), p99: quantile(times, 0.99), max: Math.max(...times) }, before, after, bad, why: why.slice(0, 20) };
  for (const l of why.slice(0, 5)) console.log(`  log: ${l}`);
  row('logins', `${n} sequential logins (SHA-512, shadow, true)`, `${ok}/${n} "\\0" and a clean end; ${s1(wall)}, ${median(times).toFixed(0)} ms median, ${quantile(times, 0.99).toFixed(0)} ms p99, ${times.filter((t) => t > 1000).length} over 1 s`, ok === n);
  row('logins', 'inetd fds / our fds before → after', `${before.inetdFds} → ${after.inetdFds} / ${before.ownFds} → ${after.ownFds}`, after.inetdFds === before.inetdFds && after.ownFds <= before.ownFds);
  row('logins', 'processes (inetd children, user) and zombies before → after', `${before.children}+${before.userProcesses} → ${after.children}+${after.userProcesses}; zombies ${before.zombies} → ${after.zombies}`, after.children === before.children && after.userProcesses === before.userProcesses && after.zombies === 0);
}

// ------------------------------------------------------------------ 4. listen
async function listenPhase() {
  const n = CFG.maxConnections;
  const EXCESS = 20;
  console.log(`listen: --max-connections ${n}, ${EXCESS} more than that`);
  const port = await freePort();
  const child = spawn('nsenter', ['-m', '-t', String(inetd), '--', 'env', '-i', NODE, REXECD, '--listen', `127.0.0.1:${port}`, '--max-connections', String(n), ...NO_SOURCE_LIMITS, '--auth', 'shadow', '--fail-delay', '0', '--timeout', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  try {
    const end = Date.now() + 15000;
    while (!out.includes('listening on')) {
      if (child.exitCode !== null || Date.now() > end) throw new Error(`the listener did not start: ${out.trim() || `exit ${child.exitCode}`}`);
      await sleep(20);
    }
    const login = () => session(port, { timeout: 20_000, head: (s) => s.end(request('echo served')) });
    /** n idle connections hold every slot; EXCESS more arrive; the idle ones leave; 10 logins. */
    const round = async () => {
      const idle = [];
      for (let i = 0; i < n; i++) {
        idle.push(await new Promise((res) => {
          const s = connect({ port, host: '127.0.0.1' }, () => res(s));
          s.on('error', () => res(s));
        }));
      }
      await sleep(500);
      const excess = await Promise.all(Array.from({ length: EXCESS }, (_, i) => (i % 2 ? login() : session(port, { idle: true, timeout: 20_000 }))));
      for (const s of idle) s.destroy();
      await sleep(1000);
      const again = [];
      for (let i = 0; i < 10; i++) again.push(await login());
      await sleep(500);
      return {
        refused: excess.filter((r) => r.first.toString('latin1') === '\x01Try again.\n' && r.bytes === 12).length,
        slowest: Math.max(...excess.map((r) => r.ms)),
        served: again.filter((r) => r.first.toString('latin1') === '\0served\n').length,
        fds: fdCount(child.pid),
      };
    };
    // Two rounds: the first also opens what the listener opens once (its syslog
    // socket at the first refusal); the second must not need one fd more.
    const one = await round();
    const two = await round();
    const alive = child.exitCode === null;
    results.listen = { n, excess: EXCESS, rounds: [one, two], alive };
    const refused = one.refused + two.refused;
    const slowest = Math.max(one.slowest, two.slowest);
    const served = one.served + two.served;
    row('listen', `--max-connections ${n}: ${n} idle hold the slots, ${EXCESS} more arrive (2 rounds)`, `${refused}/${2 * EXCESS} got "\\001Try again.\\n" and a close (slowest ${s1(slowest)})`, refused === 2 * EXCESS && slowest < 5000);
    row('listen', 'serves again once the idle ones leave', `${served}/20 logins; listener ${alive ? 'running' : 'gone'}; its fds after round 1 → 2: ${one.fds} → ${two.fds}`, served === 20 && alive && two.fds <= one.fds);
  } catch (e) {
    results.listen = { error: e.message };
    row('listen', `--max-connections ${n}`, `not run: ${e.message.split('\n')[0]}`, false);
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
    }
  }
}

// ------------------------------------------------------------------ run
const T0 = performance.now();
try {
  if (PHASES.includes('idle')) await idlePhase();
  if (PHASES.includes('streams')) await streamPhase();
  if (PHASES.includes('logins')) await loginPhase();
  if (PHASES.includes('listen')) await listenPhase();
} finally {
  await stopWorld();
}
results.seconds = (performance.now() - T0) / 1000;
results.rows = rows;

const failed = rows.filter((r) => !r.pass).length;
const table = [
  `Measured ${new Date().toISOString().slice(0, 10)} on ${execFileSync('nproc').toString().trim()} cores, Node ${process.version}, ${opt.quick ? '--quick' : 'full run'} (${results.seconds.toFixed(0)} s):`,
  '',
  '| phase | what | result | |',
  '|---|---|---|---|',
  ...rows.map((r) => `| ${r.phase} | ${r.what} | ${r.result.replace(/\|/g, '\\|')} | ${r.pass ? 'ok' : '**FAIL**'} |`),
].join('\n');
console.log(`\n${table}\n`);
if (opt.json) writeFileSync(opt.json, JSON.stringify(results, null, 2));
console.log(failed ? `stress: ${failed} check(s) failed` : 'stress: every check passed');
process.exit(failed ? 1 : 0);
