// The benchmark (issue 7): our rexecd against Debian's C in.rexecd, side by side,
// under one private openbsd-inetd (loopback only, test users only inside a private
// mount namespace; see test/harness/world.ts), with glibc's rexec_af() as client.
//
//   npm run bench                        full run (a few minutes)
//   node scripts/bench.mjs --quick       short run (well under a minute)
//   node scripts/bench.mjs --json FILE   also where the figures go (default: a temp dir)
//   node scripts/bench.mjs --entry dist/rexecd.js   run another build of ours
//                                        (default: the harness's REXECD, the deployed
//                                        loader dist/rexecd.cjs)
//
// Every measurement alternates ours and C (ours, C, ours, C, ... and the first of
// each pair alternates too), so drift and other load on the machine hit both alike.
// Ours is `node dist/rexecd.cjs` from a copy of the build made at the start (others
// may rebuild dist/ meanwhile), with its code cache rebuilt for the copy, started
// by inetd with a clean environment.
// It prints medians and ours/C, and writes every sample as JSON.  Needs root and the
// packages of scripts/install-test-deps.sh.
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, rmSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { harness } from './compile-tests.mjs';
import { preflight } from './preflight.mjs';

const { startWorld } = harness('world');
const { REXECD, NODE, ROOT } = harness('paths');
const { clientPath, glibcClient } = harness('clients');
const { NO_SOURCE_LIMITS } = harness('launchers');

const { values: opt } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    entry: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
const ENTRY = resolve(ROOT, opt.entry ?? REXECD);
preflight('bench', {
  help: opt.help,
  usage: 'node scripts/bench.mjs [--quick] [--json FILE] [--entry dist/FILE]',
  why: 'private mount namespace, inetd, becoming the test users',
  files: ['/usr/sbin/inetd', '/usr/sbin/in.rexecd', ENTRY],
});

const QUICK = opt.quick;
const IDLE = QUICK ? 200 : 1000;
const CFG = QUICK
  ? { warmup: 2, rounds: 8, burst: 32, burstRounds: 1, burstSeconds: 20, rss: 4, running: 2, sleep: 1, mib: 256, cat: 1 }
  : { warmup: 5, rounds: 60, burst: 128, burstRounds: 3, burstSeconds: 60, rss: 15, running: 5, sleep: 2, mib: 1024, cat: 5 };
const CONCURRENCY = 16;
const NOFILE = 1024;

const out = mkdtempSync(join(tmpdir(), 'rexecd-bench-'));
chmodSync(out, 0o755);
const jsonPath = resolve(opt.json ?? join(out, 'bench-results.json'));
const CLIENT = clientPath();
const RUSAGE = rusagePath();
// Serve a copy of this build: others may rebuild dist/ while the benchmark runs.
const APP = snapshotApp(join(out, 'app'), ENTRY);

const USERS = {
  yescrypt: { name: 'benchy', password: 'bench-y-pw', method: 'yescrypt' },
  sha512: { name: 'benchs', password: 'bench-s-pw', method: 'sha512crypt' },
};
const DENY_SERVICE = 'rexecd-bench-deny';
// scripts/bench-rusage.c in front of a server: one "maxrss KiB,user µs,sys µs,wall µs,status" line per connection
const ours = (args) => ({ program: NODE, args: [APP, ...args] }); // = node dist/rexecd.cjs args
const timed = (log, program, args) => ({ program: RUSAGE, args: [log, program, program.split('/').pop(), ...args] });
const LOG = { ours: join(out, 'time-ours.log'), oursPam: join(out, 'time-ours-pam.log'), c: join(out, 'time-c.log') };

// ------------------------------------------------------------------ helpers
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))] : NaN;
};
const summary = (xs) => ({ n: xs.length, median: median(xs), mean: xs.reduce((a, b) => a + b, 0) / xs.length, p10: quantile(xs, 0.1), p90: quantile(xs, 0.9), min: Math.min(...xs), max: Math.max(...xs) });
const round = (x, d = 1) => (Number.isFinite(x) ? Number(x.toFixed(d)) : null);

/** Run a program; resolves { code, ms, stdout, stderr }.  Timing: spawn() to 'exit'. */
function run(cmd, args, { env = {}, timeout = 120_000, capture = false } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe'] });
    let ms;
    const so = [];
    const se = [];
    child.stdout?.on('data', (d) => so.push(d));
    child.stderr.on('data', (d) => se.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('exit', () => (ms = Number(process.hrtime.bigint() - t0) / 1e6));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: signal ? `signal ${signal}` : code, ms, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() });
    });
  });
}

const clientArgs = (port, user, command, extra = []) => [...extra, '-n', '-l', user.name, '-p', user.password, '127.0.0.1', String(port), command];

/** One rexec of `command`; throws (after two retries) when it does not succeed. */
async function rexec(port, user, command = 'true', { capture = false } = {}) {
  let last;
  for (let attempt = 0; attempt < 3; attempt++) {
    last = await run(CLIENT, clientArgs(port, user, command), { capture });
    if (last.code === 0) return last;
    await sleep(200);
  }
  throw new Error(`rexec to port ${port} as ${user.name} failed: rc=${last.code} ${last.stderr.trim()}`);
}

// ------------------------------------------------------------------ the world
const pamDeny = 'auth required pam_deny.so\naccount required pam_deny.so\nsession required pam_deny.so\n';
const world = await startWorld({
  users: Object.values(USERS),
  pam: { [DENY_SERVICE]: pamDeny },
  etc: { hosts: '127.0.0.1 localhost\n::1 localhost\n' },
  nofile: NOFILE,
  services: {
    ours: ours([]),
    oursPam: ours(['--auth', 'pam']),
    c: { program: '/usr/sbin/in.rexecd', args: [] },
    oursTime: timed(LOG.ours, NODE, [APP]),
    oursPamTime: timed(LOG.oursPam, NODE, [APP, '--auth', 'pam']),
    cTime: timed(LOG.c, '/usr/sbin/in.rexecd', []),
    // Probes: with a PAM service that denies everyone, a server that really asks
    // PAM refuses a correct password; one that checks /etc/shadow itself accepts it.
    probeDefault: ours(['--pam-service', DENY_SERVICE, '--fail-delay', '0']),
    probePam: ours(['--auth', 'pam', '--pam-service', DENY_SERVICE, '--fail-delay', '0']),
    // The listener with its warm pool, socket-activated: inetd "wait" hands it the
    // listening socket.  Every benchmark connection comes from 127.0.0.1, so the
    // per-source limits are off (they would refuse the 16-client bursts).
    pool: { ...ours(NO_SOURCE_LIMITS), wait: true },
    poolPam: { ...ours(['--auth', 'pam', ...NO_SOURCE_LIMITS]), wait: true },
  },
});
let stopping;
const stopWorld = () => (stopping ??= world.stop());
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    console.error(`bench: ${sig}, stopping inetd`);
    stopWorld().finally(() => process.exit(130));
  });
}

// The world's syslog socket holds only net.unix.max_dgram_qlen (often 10) messages
// before a logging server blocks: drain it all the time, and count what arrives.
const logCount = {};
const oddLogs = [];
const drainer = setInterval(() => {
  const lines = world.logs();
  for (const l of lines.splice(0)) {
    const ident = /^\w{3} +\d+ [\d:]+ ([\w.-]+)\[/.exec(l.text)?.[1] ?? '?';
    logCount[ident] = (logCount[ident] ?? 0) + 1;
    if (!/: (user \S+ from 127\.0\.0\.1|login from localhost as \S+|listening on \S+ \(from inetd\), --max-connections \d+)$/.test(l.text) && oddLogs.length < 50) oddLogs.push(l.text);
  }
}, 2);

const results = { started: new Date().toISOString() };
try {
  results.machine = machine();
  if (results.machine.loadavgStart[0] > 0.5) note(`load average ${results.machine.loadavgStart[0]}: other work on this machine will blur the figures (the A/B interleaving keeps the ratios fair)`);
  results.served = { ours: `${NODE} ${relative(ROOT, ENTRY)} (run from a copy of the build: ${APP})`, c: '/usr/sbin/in.rexecd' };
  results.config = { ...CFG, quick: QUICK, concurrency: CONCURRENCY, inetdNofile: NOFILE, client: 'glibc rexec_af (test/harness/rexec-client.c), stderr channel, -n' };

  // ---------------------------------------------------------------- which auth
  const auth = await detectAuth();
  await sleep(50);
  auth.probeLogs = oddLogs.splice(0); // the deny-service probes' refusals: expected
  results.auth = auth;
  const OURS = auth.oursService;
  const OURS_TIME = OURS === 'oursPam' ? 'oursPamTime' : 'oursTime';
  const oursLog = OURS === 'oursPam' ? LOG.oursPam : LOG.ours;
  const P = { ours: world.ports[OURS], c: world.ports.c, pool: world.ports[OURS === 'oursPam' ? 'poolPam' : 'pool'] };
  const PT = { ours: world.ports[OURS_TIME], c: world.ports.cTime };
  const pairs = (i) => (i % 2 === 0 ? ['ours', 'c'] : ['c', 'ours']);

  note(`auth: ours = ${auth.ours}; C = ${auth.c}`);
  note(`inetd RLIMIT_NOFILE ${NOFILE}; ${QUICK ? 'quick' : 'full'} run; results in ${jsonPath}`);

  // ---------------------------------------------------------------- sanity
  for (const side of ['ours', 'c', 'pool']) {
    for (const u of Object.values(USERS)) {
      const r = await rexec(P[side], u, 'id -un; pwd', { capture: true });
      if (r.stdout.split('\n')[0] !== u.name) throw new Error(`${side}: id -un gave ${JSON.stringify(r.stdout)}`);
    }
  }

  // ---------------------------------------------------------------- latency
  note(`latency: ${CFG.warmup} warm-up + ${CFG.rounds} interleaved rounds of \`true\` per user and side, and node -e 0`);
  // Three sides in turn, the order rotating each round: ours single-shot under
  // inetd ("nowait"), C under inetd, ours pool under inetd ("wait").
  const SIDES = ['ours', 'c', 'pool'];
  const rotate = (i) => SIDES.map((_, k) => SIDES[(((i + k) % SIDES.length) + SIDES.length) % SIDES.length]);
  const lat = { yescrypt: { ours: [], c: [], pool: [] }, sha512: { ours: [], c: [], pool: [] }, nodeE0: [] };
  const nodeLog = join(out, 'time-node.log');
  for (let i = -CFG.warmup; i < CFG.rounds; i++) {
    for (const [key, u] of Object.entries(USERS)) {
      for (const side of rotate(i)) {
        const r = await rexec(P[side], u);
        if (i >= 0) lat[key][side].push(r.ms);
      }
    }
    // node -e 0 as inetd would start it (a clean environment): its latency, then,
    // under bench-rusage like the servers, its CPU and peak RSS.
    const n = await run(NODE, ['-e', '0']);
    if (n.code !== 0) throw new Error(`node -e 0: ${n.stderr}`);
    if (i >= 0) lat.nodeE0.push(n.ms);
    if (i === 0) writeFileSync(nodeLog, '');
    if (i >= 0) await run(RUSAGE, [nodeLog, NODE, 'node', '-e', '0']);
  }
  const base = await run(CLIENT, []); // usage error: what spawning the client alone costs
  const nodeRows = lines(nodeLog).map((l) => l.split(',').map(Number));
  results.latencyMs = {
    yescrypt: { ours: summary(lat.yescrypt.ours), c: summary(lat.yescrypt.c), pool: summary(lat.yescrypt.pool) },
    sha512: { ours: summary(lat.sha512.ours), c: summary(lat.sha512.c), pool: summary(lat.sha512.pool) },
    nodeE0: summary(lat.nodeE0),
    nodeE0CpuMs: summary(nodeRows.map((r) => (r[1] + r[2]) / 1000)),
    nodeE0MaxrssKiB: summary(nodeRows.map((r) => r[0])),
    clientSpawnOnly: base.ms,
    samples: lat,
  };

  // ---------------------------------------------------------------- the pool's memory
  // Right after a run of logins the pool keeps extra workers ready; at the end of
  // the benchmark (minutes later) it is back to --spare.
  note('memory of the pool listener and its idle workers, part by part (smaps_rollup), after the logins');
  await sleep(2000); // the pool refills after the last login
  results.poolMemoryBusy = poolMemory(P.pool);

  // ---------------------------------------------------------------- connections per second
  note(`throughput: ${CFG.burstRounds} × bursts of ${CFG.burst} connections, ${CONCURRENCY} at a time (at most ${CFG.burstSeconds} s each)`);
  const cps = { yescrypt: { ours: [], c: [], pool: [] }, sha512: { ours: [], c: [], pool: [] } };
  const cpsFail = { ours: 0, c: 0, pool: 0 };
  for (let i = 0; i < CFG.burstRounds; i++) {
    for (const [key, u] of Object.entries(USERS)) {
      for (const side of rotate(i)) {
        const b = await burst(P[side], u, CFG.burst, CONCURRENCY, CFG.burstSeconds * 1000);
        cps[key][side].push(b.perSecond);
        cpsFail[side] += b.failed;
      }
    }
  }
  results.connectionsPerSecond = {
    yescrypt: { ours: summary(cps.yescrypt.ours), c: summary(cps.yescrypt.c), pool: summary(cps.yescrypt.pool) },
    sha512: { ours: summary(cps.sha512.ours), c: summary(cps.sha512.c), pool: summary(cps.sha512.pool) },
    failed: cpsFail,
    samples: cps,
  };

  // ---------------------------------------------------------------- peak RSS
  note(`peak RSS and CPU: ${CFG.rss} connections per user and side under scripts/bench-rusage.c`);
  for (const f of [oursLog, LOG.c]) writeFileSync(f, '');
  const rssLogs = { ours: oursLog, c: LOG.c };
  const peak = {};
  for (const [key, u] of Object.entries(USERS)) {
    const before = { ours: lines(oursLog).length, c: lines(LOG.c).length };
    for (let i = 0; i < CFG.rss; i++) for (const side of pairs(i)) await rexec(PT[side], u);
    peak[key] = {};
    for (const side of ['ours', 'c']) {
      const got = await waitLines(rssLogs[side], before[side] + CFG.rss);
      const rows = got.slice(before[side]).map((l) => l.split(',').map(Number));
      peak[key][side] = {
        maxrssKiB: summary(rows.map((r) => r[0])),
        cpuMs: summary(rows.map((r) => (r[1] + r[2]) / 1000)),
        wallMs: summary(rows.map((r) => r[3] / 1000)),
        samples: rows.map(([maxrssKiB, userUs, sysUs, wallUs, status]) => ({ maxrssKiB, userUs, sysUs, wallUs, status })),
      };
    }
  }
  results.peakRss = {
    how: 'ru_maxrss of the per-connection process from wait4(), by scripts/bench-rusage.c in front of the server in inetd.conf (what /usr/bin/time -f %M does in ../shared/peer/rss.sh, but with microsecond CPU times). ru_maxrss survives execve, so it spans the server and the shell it becomes; `sh -c true` itself peaks at ~1.7 MiB, so the figure is the server\'s peak before the exec. The same records give the CPU time (user+sys) and the lifetime (fork to exit of the shell) of one connection.',
    ...peak,
  };

  // ---------------------------------------------------------------- RSS while the command runs
  note(`RSS while \`sleep ${CFG.sleep}\` runs: ${CFG.running} sessions per side (yescrypt user)`);
  const running = { ours: [], c: [] };
  for (let i = 0; i < CFG.running; i++) {
    for (const side of pairs(i)) running[side].push(await runningRss(P[side], USERS.yescrypt, CFG.sleep));
  }
  results.runningRss = {
    how: 'sum of VmRSS over every process under inetd (the session of one connection) while `sleep` runs, sampled 150 ms after `sleep` appears',
    ours: { kiB: summary(running.ours.map((r) => r.kiB)), samples: running.ours },
    c: { kiB: summary(running.c.map((r) => r.kiB)), samples: running.c },
  };

  // ---------------------------------------------------------------- bulk data through cat
  note(`bulk: ${CFG.mib} MiB stdin -> remote cat -> stdout, ${CFG.cat} × per side (SHA-512 user), checked with cksum`);
  const block = join(out, 'block-16MiB');
  writeFileSync(block, randomBytes(16 << 20));
  const feed = Array(CFG.mib / 16).fill(block);
  const local = await run('bash', ['-o', 'pipefail', '-c', 'cat "$@" | cksum', 'bash', ...feed], { capture: true, env: { PATH: '/usr/bin:/bin' } });
  const expected = local.stdout.trim();
  const bulk = { ours: [], c: [] };
  for (let i = 0; i < CFG.cat; i++) {
    for (const side of pairs(i)) {
      const script = `cat "\${@:3}" | "$1" -l ${USERS.sha512.name} -p ${USERS.sha512.password} 127.0.0.1 "$2" cat | cksum`;
      const r = await run('bash', ['-o', 'pipefail', '-c', script, 'bash', CLIENT, String(P[side]), ...feed], { capture: true, env: { PATH: '/usr/bin:/bin' }, timeout: 600_000 });
      if (r.code !== 0 || r.stdout.trim() !== expected) throw new Error(`${side}: cat of ${CFG.mib} MiB: rc=${r.code} cksum ${r.stdout.trim()} expected ${expected} ${r.stderr}`);
      // The data phase alone: the session less this side's median login (`true`, same user).
      const dataMs = r.ms - median(lat.sha512[side]);
      bulk[side].push({ ms: r.ms, mibPerSec: CFG.mib / (r.ms / 1000), dataMibPerSec: CFG.mib / (dataMs / 1000) });
    }
  }
  results.bulk = {
    mib: CFG.mib,
    how: 'wall time of `cat blocks | rexec-client … cat | cksum` (login included: mibPerSec; less the median `true` latency of that side and user: dataMibPerSec); bytes and CRC checked against the local pipe',
    cksum: expected,
    localPipe: { ms: local.ms, mibPerSec: CFG.mib / (local.ms / 1000) },
    ours: { mibPerSec: summary(bulk.ours.map((b) => b.mibPerSec)), dataMibPerSec: summary(bulk.ours.map((b) => b.dataMibPerSec)), samples: bulk.ours },
    c: { mibPerSec: summary(bulk.c.map((b) => b.mibPerSec)), dataMibPerSec: summary(bulk.c.map((b) => b.dataMibPerSec)), samples: bulk.c },
  };

  // ---------------------------------------------------------------- --listen
  // The standalone listener with its pool of pre-started per-connection processes:
  // latency beside C under inetd, and what idle connections cost it.
  results.listen = await listenBench(world, P.c, OURS === 'oursPam');

  note('memory of the pool at rest (no login for the last minutes)');
  results.poolMemory = poolMemory(P.pool);

  results.finished = new Date().toISOString();
  results.loadavgEnd = loadavg();
  results.syslog = { count: logCount, unexpected: oddLogs };
  writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n');
  console.log(table(results));
  console.log(`\nJSON: ${jsonPath}`);
} catch (e) {
  console.error(`bench: ${e.stack ?? e}`);
  process.exitCode = 1;
} finally {
  clearInterval(drainer);
  await stopWorld();
  // Keep the JSON and the rusage logs; drop the copy of the build and the data block.
  for (const f of ['app', 'block-16MiB']) rmSync(join(out, f), { recursive: true, force: true });
}

// ------------------------------------------------------------------ pieces

/**
 * `rexecd --listen` inside the world's namespace (same users, same PAM service as
 * ours under inetd): latency of `true` interleaved with C, then IDLE connections
 * that have sent half a request, and the RSS of the listener and its processes.
 */
async function listenBench(world, cPort, pam) {
  const port = 20000 + Math.floor(Math.random() * 40000);
  const auth = pam ? ['--auth', 'pam'] : [];
  // ulimit: room for IDLE connections (the listener holds one fd each).
  const child = spawn('nsenter', ['-m', '-t', String(world.inetdPid), '--', 'sh', '-c', 'ulimit -n 8192 && exec env -i "$@"', 'sh', NODE, APP, '--listen', `127.0.0.1:${port}`, '--max-connections', String(IDLE + 64), ...NO_SOURCE_LIMITS, ...auth], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let said = '';
    child.stdout.on('data', (d) => (said += d));
    for (let i = 0; i < 500 && !said.includes('listening on'); i++) await sleep(20);
    if (!said.includes('listening on')) throw new Error('--listen did not start');
    await sleep(1500); // the pool's processes start
    note(`--listen: ${CFG.rounds} interleaved rounds per user beside C, then ${IDLE} idle connections`);
    const L = { yescrypt: { listen: [], c: [] }, sha512: { listen: [], c: [] } };
    for (let i = -CFG.warmup; i < CFG.rounds; i++) {
      for (const [key, u] of Object.entries(USERS)) {
        for (const side of i % 2 === 0 ? ['listen', 'c'] : ['c', 'listen']) {
          const r = await rexec(side === 'listen' ? port : cPort, u);
          if (i >= 0) L[key][side].push(r.ms);
        }
      }
    }
    const tree = () => [child.pid, ...descendants(child.pid).map((p) => p.pid)];
    // A worker or session may end between the listing and the read: it counts 0.
    const vmRss = (pid) => {
      try {
        return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        return 0;
      }
    };
    const rssOf = (pids) => pids.reduce((a, pid) => a + vmRss(pid), 0);
    const before = rssOf(tree());
    const listenerBefore = rssOf([child.pid]);
    const { connect } = await import('node:net');
    const socks = [];
    for (let i = 0; i < IDLE; i++) {
      socks.push(await new Promise((res, rej) => {
        const c = connect({ port, host: '127.0.0.1' }, () => { c.write('\0benchy\0'); res(c); });
        c.on('error', rej);
      }));
    }
    await sleep(1000);
    const pids = tree();
    const idle = { connections: IDLE, processes: pids.length, rssKiBBefore: before, rssKiB: rssOf(pids), listenerKiBBefore: listenerBefore, listenerKiB: rssOf([child.pid]) };
    for (const c of socks) c.destroy();
    return {
      latencyMs: {
        yescrypt: { listen: summary(L.yescrypt.listen), c: summary(L.yescrypt.c) },
        sha512: { listen: summary(L.sha512.listen), c: summary(L.sha512.c) },
        samples: L,
      },
      idle,
    };
  } finally {
    child.kill('SIGTERM');
  }
}

/**
 * A copy of dist/ (less the single executables and their build files) and of the
 * runtime dependencies, laid out as in the checkout, so that the copy of `entry`
 * runs exactly this build all along.
 */
function snapshotApp(dest, entry) {
  const dist = join(ROOT, 'dist');
  cpSync(dist, join(dest, 'dist'), {
    recursive: true,
    filter: (src) => {
      if (src === dist) return true;
      if (['sea', 'pkg'].includes(src.slice(dist.length + 1).split('/')[0])) return false;
      const st = statSync(src);
      return st.isDirectory() || st.size < 8 << 20;
    },
  });
  cpSync(join(ROOT, 'package.json'), join(dest, 'package.json'));
  const seen = new Set();
  const copyDep = (name) => {
    const dir = join(ROOT, 'node_modules', name);
    if (seen.has(name) || !existsSync(dir)) return;
    seen.add(name);
    cpSync(dir, join(dest, 'node_modules', name), { recursive: true, dereference: true });
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const d of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) copyDep(d);
  };
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  for (const d of Object.keys(pkg.dependencies ?? {})) copyDep(d);
  const main = join(dest, relative(ROOT, entry));
  // The loader trusts a code cache only for the bundle file it was made for: a
  // copy needs its own (made by the node that runs it, as an install makes one).
  if (main.endsWith('rexecd.cjs')) execFileSync(NODE, [main, '--build-code-cache'], { env: {} });
  const version = execFileSync(NODE, [main, '--version'], { env: {} }).toString();
  if (main.endsWith('rexecd.cjs') && !version.includes('code cache: used')) throw new Error(`the copy of the build does not use its code cache: ${version}`);
  return main;
}

/** scripts/bench-rusage.c, compiled on demand beside the test client. */
function rusagePath() {
  const src = join(ROOT, 'scripts', 'bench-rusage.c');
  const bin = join(ROOT, 'test', '.build', 'bench-rusage');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) {
    mkdirSync(dirname(bin), { recursive: true });
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', bin, src]);
  }
  return bin;
}

function note(text) {
  console.error(`bench: ${text}`);
}

function machine() {
  const os = readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1];
  return {
    nproc: Number(execFileSync('nproc').toString().trim()),
    cpu: cpus()[0]?.model,
    kernel: release(),
    os,
    node: process.version,
    loadavgStart: loadavg(),
    inRexecd: pkgVersion('rsh-server'),
    inetd: pkgVersion('openbsd-inetd'),
    libc: pkgVersion('libc6'),
  };
}

function pkgVersion(p) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', p]).toString();
  } catch {
    return undefined;
  }
}

/** What each side authenticates with (see the probe services above). */
async function detectAuth() {
  const u = USERS.sha512;
  const probe = async (port) => {
    const r = await glibcClient({ port, user: u.name, password: u.password, command: 'true' });
    if (r.code === 0) return 'accepted';
    const why = r.stderr.toString();
    return /Login incorrect/.test(why) ? 'refused' : /Try again/.test(why) ? 'try-again' : `failed: ${why.trim()}`;
  };
  const viaPam = await probe(world.ports.probePam);
  const viaDefault = await probe(world.ports.probeDefault);
  let pamWorks = false;
  if (viaPam === 'refused') {
    // And it accepts both users through the real `rexec` service.
    const ok = await Promise.all(Object.values(USERS).map((x) => glibcClient({ port: world.ports.oursPam, user: x.name, password: x.password, command: 'true' })));
    pamWorks = ok.every((r) => r.code === 0);
  }
  const help = execFileSync(NODE, [APP, '--help'], { env: {} }).toString();
  const defaultMethod = viaDefault === 'refused' ? 'pam' : viaDefault === 'accepted' ? 'shadow' : `unknown (${viaDefault})`;
  const r = {
    helpListsPam: /--auth pam/.test(help),
    probeAuthPam: viaPam,
    probeDefault: viaDefault,
    pamWorks,
    defaultMethod,
    c: 'PAM (service rexec, /etc/pam.d/rexec from rsh-server)',
  };
  if (r.helpListsPam && pamWorks && defaultMethod === 'pam') {
    // As most inetd lines run it: no options, PAM being the default where libpam loads.
    r.oursService = 'ours';
    r.ours = 'PAM (its default, no options; service rexec)';
  } else if (r.helpListsPam && pamWorks) {
    r.oursService = 'oursPam';
    r.ours = 'PAM (--auth pam, service rexec)';
  } else {
    r.oursService = 'ours';
    r.ours = `${defaultMethod} (its default; --auth pam ${r.helpListsPam ? `is listed but did not use PAM: probe ${viaPam}` : 'is not offered'})`;
  }
  return r;
}

/** count connections, `concurrency` at a time, bounded by ms. */
async function burst(port, user, count, concurrency, ms) {
  let started = 0;
  let done = 0;
  let failed = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const worker = async () => {
    while (started < count && performance.now() < end) {
      started++;
      const r = await run(CLIENT, clientArgs(port, user, 'true'));
      if (r.code === 0) done++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { done, failed, seconds, perSecond: done / seconds };
}

/** A process's memory from /proc/PID/smaps_rollup, KiB: resident, proportional share, its own. */
function memoryOf(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: kib('Rss'), pssKiB: kib('Pss'), ussKiB: kib('Private_Clean') + kib('Private_Dirty'), anonKiB: kib('Anonymous') };
}

/**
 * The pool's listener (inetd's child for the pool service, after a connection has
 * started it) and its idle workers, each with RSS (what top shows; counts shared
 * pages in full), PSS (shared pages divided among their users) and USS (pages no
 * other process has: what stopping it would give back).
 */
function poolMemory(port) {
  const cmdline = (pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      return '';
    }
  };
  const listener = descendants(world.inetdPid).find((p) => p.ppid === world.inetdPid && cmdline(p.pid).includes('--per-source-penalties\0no'));
  if (!listener) throw new Error(`no pool listener for port ${port} under inetd`);
  const workers = descendants(listener.pid).filter((p) => p.ppid === listener.pid);
  // A worker may be let go between the listing and the read (an extra one idle too long).
  const present = (pid) => {
    try {
      return [memoryOf(pid)];
    } catch {
      return [];
    }
  };
  const parts = { listener: memoryOf(listener.pid), workers: workers.flatMap((w) => present(w.pid)) };
  const sum = (key) => parts.listener[key] + parts.workers.reduce((a, w) => a + w[key], 0);
  return {
    how: '/proc/PID/smaps_rollup of the pool listener (inetd "wait") and of each idle worker: Rss, Pss, Private_Clean+Private_Dirty (USS), Anonymous',
    ...parts,
    total: { rssKiB: sum('rssKiB'), pssKiB: sum('pssKiB'), ussKiB: sum('ussKiB') },
  };
}

function lines(file) {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => /^\d/.test(l)) : [];
}

/** bench-rusage writes its record after the client may have seen EOF: wait for it. */
async function waitLines(file, n) {
  for (let i = 0; i < 200; i++) {
    const got = lines(file);
    if (got.length >= n) return got;
    await sleep(25);
  }
  throw new Error(`${file}: expected ${n} records, have ${lines(file).length}`);
}

/** Every process below pid (by PPid), with comm and VmRSS in KiB. */
function descendants(pid) {
  const procs = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const status = readFileSync(`/proc/${d}/status`, 'latin1');
      procs.push({
        pid: Number(d),
        ppid: Number(/^PPid:\s*(\d+)/m.exec(status)[1]),
        comm: /^Name:\s*(.*)$/m.exec(status)[1],
        rss: Number(/^VmRSS:\s*(\d+)/m.exec(status)?.[1] ?? 0),
      });
    } catch {
      // gone meanwhile
    }
  }
  const below = new Set([pid]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!below.has(p.pid) && below.has(p.ppid)) {
        below.add(p.pid);
        grew = true;
      }
    }
  }
  return procs.filter((p) => p.pid !== pid && below.has(p.pid));
}

async function runningRss(port, user, seconds) {
  const session = rexec(port, user, `sleep ${seconds}`);
  let sample;
  for (let i = 0; i < 1000 && !sample; i++) {
    if (descendants(world.inetdPid).some((p) => p.comm === 'sleep')) {
      await sleep(150);
      // The session alone: not the pool's listener and workers, which inetd keeps too.
      const pool = new Set(descendants(world.inetdPid).filter((p) => p.comm === 'node' && p.ppid === world.inetdPid).flatMap((p) => [p.pid, ...descendants(p.pid).filter((d) => d.comm === 'node').map((d) => d.pid)]));
      const procs = descendants(world.inetdPid).filter((p) => !pool.has(p.pid));
      sample = { kiB: procs.reduce((a, p) => a + p.rss, 0), processes: procs.map((p) => `${p.comm}:${p.rss}`) };
    } else await sleep(5);
  }
  await session;
  if (!sample) throw new Error(`port ${port}: never saw sleep running`);
  return sample;
}

function table(r) {
  const rows = [];
  const ratio = (a, b) => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '-');
  const row = (label, o, c, d = 1) => rows.push([label, round(o, d)?.toLocaleString('en-US') ?? '-', round(c, d)?.toLocaleString('en-US') ?? '-', ratio(o, c)]);
  const L = r.latencyMs;
  const C = r.connectionsPerSecond;
  row('inetd nowait: latency `true`, yescrypt user (ms)', L.yescrypt.ours.median, L.yescrypt.c.median);
  row('inetd nowait: latency `true`, SHA-512 user (ms)', L.sha512.ours.median, L.sha512.c.median);
  row(`inetd nowait: connections/s, ${CONCURRENCY} clients, yescrypt`, C.yescrypt.ours.median, C.yescrypt.c.median);
  row(`inetd nowait: connections/s, ${CONCURRENCY} clients, SHA-512`, C.sha512.ours.median, C.sha512.c.median);
  row('inetd nowait: peak RSS per connection, yescrypt (KiB)', r.peakRss.yescrypt.ours.maxrssKiB.median, r.peakRss.yescrypt.c.maxrssKiB.median, 0);
  row('inetd nowait: peak RSS per connection, SHA-512 (KiB)', r.peakRss.sha512.ours.maxrssKiB.median, r.peakRss.sha512.c.maxrssKiB.median, 0);
  row('inetd nowait: CPU per connection, yescrypt (ms)', r.peakRss.yescrypt.ours.cpuMs.median, r.peakRss.yescrypt.c.cpuMs.median);
  row('inetd nowait: CPU per connection, SHA-512 (ms)', r.peakRss.sha512.ours.cpuMs.median, r.peakRss.sha512.c.cpuMs.median);
  row(`RSS while \`sleep\` runs (KiB, session)`, r.runningRss.ours.kiB.median, r.runningRss.c.kiB.median, 0);
  const size = r.bulk.mib % 1024 ? `${r.bulk.mib} MiB` : `${r.bulk.mib / 1024} GiB`;
  row(`${size} through cat, whole session (MiB/s)`, r.bulk.ours.mibPerSec.median, r.bulk.c.mibPerSec.median, 0);
  row(`${size} through cat, less login (MiB/s)`, r.bulk.ours.dataMibPerSec.median, r.bulk.c.dataMibPerSec.median, 0);
  row('pool (inetd wait): latency `true`, yescrypt (ms)', L.yescrypt.pool.median, L.yescrypt.c.median);
  row('pool (inetd wait): latency `true`, SHA-512 (ms)', L.sha512.pool.median, L.sha512.c.median);
  row(`pool (inetd wait): connections/s, ${CONCURRENCY} clients, yescrypt`, C.yescrypt.pool.median, C.yescrypt.c.median);
  row(`pool (inetd wait): connections/s, ${CONCURRENCY} clients, SHA-512`, C.sha512.pool.median, C.sha512.c.median);
  const LL = r.listen.latencyMs;
  row('--listen: latency `true`, yescrypt (ms)', LL.yescrypt.listen.median, LL.yescrypt.c.median);
  row('--listen: latency `true`, SHA-512 (ms)', LL.sha512.listen.median, LL.sha512.c.median);
  row('env -i node -e 0: latency (ms)', L.nodeE0.median, undefined);
  row('env -i node -e 0: CPU (ms)', L.nodeE0CpuMs.median, undefined);
  row('env -i node -e 0: peak RSS (KiB)', L.nodeE0MaxrssKiB.median, undefined, 0);
  const busy = r.poolMemoryBusy;
  row(`pool after the logins: ${busy.workers.length} idle workers + listener, RSS / PSS / USS (KiB)`, busy.total.rssKiB, undefined, 0);
  rows[rows.length - 1][1] = `${busy.total.rssKiB.toLocaleString('en-US')} / ${busy.total.pssKiB.toLocaleString('en-US')} / ${busy.total.ussKiB.toLocaleString('en-US')}`;
  const M = r.poolMemory;
  row('pool at rest: listener RSS / PSS / USS (KiB)', M.listener.rssKiB, undefined, 0);
  rows[rows.length - 1][1] = `${M.listener.rssKiB.toLocaleString('en-US')} / ${M.listener.pssKiB.toLocaleString('en-US')} / ${M.listener.ussKiB.toLocaleString('en-US')}`;
  M.workers.forEach((w, i) => {
    row(`pool at rest: idle worker ${i + 1} RSS / PSS / USS (KiB)`, w.rssKiB, undefined, 0);
    rows[rows.length - 1][1] = `${w.rssKiB.toLocaleString('en-US')} / ${w.pssKiB.toLocaleString('en-US')} / ${w.ussKiB.toLocaleString('en-US')}`;
  });
  row('pool at rest: all, RSS / PSS / USS (KiB)', M.total.rssKiB, undefined, 0);
  rows[rows.length - 1][1] = `${M.total.rssKiB.toLocaleString('en-US')} / ${M.total.pssKiB.toLocaleString('en-US')} / ${M.total.ussKiB.toLocaleString('en-US')}`;
  const I = r.listen.idle;
  row(`--listen: each of ${I.connections} idle half-sent connections, listener (KiB)`, (I.listenerKiB - I.listenerKiBBefore) / I.connections, undefined);
  const w = [Math.max(...rows.map((x) => x[0].length)), Math.max(9, ...rows.map((x) => x[1].length)), 9, 7];
  const fmt = (x) => `| ${x[0].padEnd(w[0])} | ${x[1].padStart(w[1])} | ${x[2].padStart(w[2])} | ${x[3].padStart(w[3])} |`;
  const rule = `|${w.map((n, i) => (i === 0 ? '-'.repeat(n + 2) : `${'-'.repeat(n + 1)}:`)).join('|')}|`;
  const tbl = [fmt(['metric (median)', 'ours', 'C', 'ours/C']), rule, ...rows.map(fmt)];
  const m = r.machine;
  const node0 = L.nodeE0.median;
  const nodeCpu = L.nodeE0CpuMs.median;
  const verdict = (ok) => (ok ? 'met' : 'MISSED');
  const gap = (k) => L[k].ours.median - L[k].c.median;
  const cpuGap = (k) => r.peakRss[k].ours.cpuMs.median - r.peakRss[k].c.cpuMs.median;
  const poolRatio = (k) => L[k].pool.median / L[k].c.median;
  const head = [
    `rexecd benchmark, ${r.started.slice(0, 10)}: ${m.nproc} × ${m.cpu}, kernel ${m.kernel}, ${m.os}, node ${m.node}`,
    `ours: ${r.served.ours.replace(/ \(run from.*/, '')}; C: /usr/sbin/in.rexecd ${m.inRexecd}`,
    `auth: ours = ${r.auth.ours}; C = ${r.auth.c}`,
    `inetd ${m.inetd}, RLIMIT_NOFILE ${r.config.inetdNofile}; client glibc rexec_af, stderr channel; ${r.config.quick ? 'quick run' : 'full run'}: ${r.config.rounds} latency rounds`,
    `load average at start ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${r.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`,
    '',
  ];
  const tail = [
    '',
    'Targets (issues 10 and 11), from this run:',
    `  inetd nowait, latency: ours − C ≤ node -e 0 + 3 ms = ${(node0 + 3).toFixed(1)} ms: yescrypt ${gap('yescrypt').toFixed(1)} ms ${verdict(gap('yescrypt') <= node0 + 3)}, SHA-512 ${gap('sha512').toFixed(1)} ms ${verdict(gap('sha512') <= node0 + 3)}`,
    `  inetd nowait, CPU: ours − C ≤ node -e 0's CPU + 3 ms = ${(nodeCpu + 3).toFixed(1)} ms: yescrypt ${cpuGap('yescrypt').toFixed(1)} ms ${verdict(cpuGap('yescrypt') <= nodeCpu + 3)}, SHA-512 ${cpuGap('sha512').toFixed(1)} ms ${verdict(cpuGap('sha512') <= nodeCpu + 3)}`,
    `  inetd nowait, peak RSS (SHA-512) ≤ node -e 0's + 8 MiB = ${((L.nodeE0MaxrssKiB.median + 8192) / 1024).toFixed(1)} MiB: ${(r.peakRss.sha512.ours.maxrssKiB.median / 1024).toFixed(1)} MiB ${verdict(r.peakRss.sha512.ours.maxrssKiB.median <= L.nodeE0MaxrssKiB.median + 8192)}`,
    `  pool, latency: ≤ 0.90 × C (yescrypt): ${poolRatio('yescrypt').toFixed(2)} ${verdict(poolRatio('yescrypt') <= 0.9)}; ≤ 0.70 × C (SHA-512): ${poolRatio('sha512').toFixed(2)} ${verdict(poolRatio('sha512') <= 0.7)}`,
    `  idle half-sent connections ≤ 16 KiB each to the listener: ${((I.listenerKiB - I.listenerKiBBefore) / I.connections).toFixed(1)} KiB ${verdict((I.listenerKiB - I.listenerKiBBefore) / I.connections <= 16)}`,
    '',
    `peak RSS and CPU = ru_maxrss and ru_utime+ru_stime from wait4() on the per-connection process (spans the exec; RSS is the server's own peak), node -e 0 measured the same way. Running RSS = sum of VmRSS in the session: ours ${r.runningRss.ours.samples[0].processes.join(' ')}, C ${r.runningRss.c.samples[0].processes.join(' ')}`,
    `pool memory: RSS counts shared pages (the node binary, libraries) in every process; PSS divides them among their users; USS is what a process alone holds (what stopping it gives back)`,
    `bulk: cksum verified; "less login" subtracts the side's median SHA-512 \`true\` latency; the same data through a local pipe: ${r.bulk.localPipe.mibPerSec.toFixed(0)} MiB/s`,
    `--listen: ${I.connections} half-sent requests held; the listener ${(I.listenerKiBBefore / 1024).toFixed(1)} → ${(I.listenerKiB / 1024).toFixed(1)} MiB RSS, with its ${I.processes - 1} workers ${(I.rssKiBBefore / 1024).toFixed(1)} → ${(I.rssKiB / 1024).toFixed(1)} MiB; C under inetd needs one process (~3.5 MiB) per connection`,
    `latency = spawn of the client to its exit, as seen from Node (spawning the client alone: ${L.clientSpawnOnly.toFixed(1)} ms, in every side's figures)`,
  ];
  const failed = r.connectionsPerSecond.failed;
  if (failed.ours || failed.c || failed.pool) tail.push(`failed connections during bursts: ours ${failed.ours}, C ${failed.c}, pool ${failed.pool}`);
  if (r.syslog.unexpected.length) tail.push(`unexpected syslog lines (first): ${r.syslog.unexpected.slice(0, 3).join(' | ')}`);
  return [...head, ...tbl, ...tail].join('\n');
}
