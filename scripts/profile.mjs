// Where one connection's time goes (issues 10 and 11): rexecd under a private
// openbsd-inetd, once single-shot ("nowait") and once as the listener with its pool
// ("wait"), each process timed by scripts/profile/preload.cjs (loaded with
// `node --require`; it times every C call rexecd makes and writes a timeline at the
// exec of the shell).  Prints the median of each stage, from the exec of node to
// the exec of the shell, and from the exec of the shell to the client's end.
//
//   node scripts/profile.mjs [--logins N] [--cpu] [--json FILE]
//
// Needs root and the packages of scripts/install-test-deps.sh; run it on a quiet
// machine.  --cpu adds V8's CPU profile (top functions by self time); the profiler's
// signals make every timing rougher.
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { harness } from './compile-tests.mjs';
import { preflight } from './preflight.mjs';

const { startWorld } = harness('world');
const { NODE, REXECD, ROOT } = harness('paths');
const { clientPath } = harness('clients');
const { NO_SOURCE_LIMITS } = harness('launchers');

const { values: opt } = parseArgs({ options: { logins: { type: 'string', default: '20' }, cpu: { type: 'boolean', default: false }, json: { type: 'string' }, help: { type: 'boolean', short: 'h', default: false } } });
const LOGINS = Number(opt.logins);
preflight('profile', { help: opt.help, usage: 'node scripts/profile.mjs [--logins N] [--cpu] [--json FILE]', why: 'private mount namespace, inetd, becoming the test users', files: ['/usr/sbin/inetd', REXECD] });

// The preload writes where it was copied: workers start with an empty environment.
const out = mkdtempSync(join(tmpdir(), 'rexecd-profile-'));
chmodSync(out, 0o1777); // each process writes as the user it has become
const preload = join(out, 'preload.cjs');
copyFileSync(join(ROOT, 'scripts', 'profile', 'preload.cjs'), preload);
writeFileSync(preload, readFileSync(preload, 'utf8').replace('const dir = process.env.REXECD_PROFILE_DIR;', `const dir = ${JSON.stringify(out)};`));
const cpu = opt.cpu ? ['REXECD_PROFILE_CPU=1'] : [];
const served = (extra) => ({ program: '/usr/bin/env', args: [...cpu, NODE, '--require', preload, REXECD, '--auth', 'pam', ...extra] });

const USERS = [
  { name: 'profs', password: 'prof-s-pw', method: 'sha512crypt' },
  { name: 'profy', password: 'prof-y-pw', method: 'yescrypt' },
];
const world = await startWorld({
  users: USERS,
  etc: { hosts: '127.0.0.1 localhost\n::1 localhost\n' },
  nofile: 1024,
  services: { inetd: served([]), pool: { ...served(NO_SOURCE_LIMITS), wait: true } },
});
const drain = setInterval(() => world.logs(), 5);
const client = clientPath();

/** One login; resolves the wall-clock time (ms since the epoch) at which the client ended. */
function login(port, user) {
  return new Promise((resolve, reject) => {
    const c = spawn(client, ['-n', '-l', user.name, '-p', user.password, '127.0.0.1', String(port), 'true'], { stdio: 'ignore', env: {} });
    c.on('exit', (code) => (code === 0 ? resolve(performance.timeOrigin + performance.now()) : reject(new Error(`login to ${port} as ${user.name}: exit ${code}`))));
  });
}

const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};
const at = (events, what, from = 0) => events.slice(from).find((e) => e[1] === what)?.[0];
const atIndex = (events, what) => events.findIndex((e) => e[1] === what);

/** The stages of a single-shot process, ms each. */
function singleShotStages(p, clientEnd) {
  const ev = p.events;
  const exec = at(ev, 'execve');
  const stages = {
    'Node: exec to bootstrap complete': p.nodeTiming.bootstrapComplete,
    'rexecd loader: bundle read and compiled (code cache), top level': at(ev, 'dlopen koffi.node') - p.nodeTiming.bootstrapComplete,
    'koffi native module loaded': at(ev, 'dlopen koffi.node done') - at(ev, 'dlopen koffi.node'),
    'rexecd: options, launcher, log, session set up': at(ev, '> recv') - at(ev, 'dlopen koffi.node done'),
    'request read, stderr channel dialled': at(ev, 'load libpam.so.0') - at(ev, '> recv'),
    'libpam loaded, its functions declared': at(ev, '> pam_start') - at(ev, 'load libpam.so.0'),
    'PAM: pam_start (config, modules)': at(ev, '< pam_start') - at(ev, '> pam_start'),
    'PAM: pam_authenticate (the hash)': at(ev, '< pam_authenticate') - at(ev, '> pam_authenticate'),
    'PAM account, become the user, environment, pam_end': at(ev, '< pam_end') - at(ev, '< pam_authenticate'),
    'descriptors, signals, log line, status byte': exec - at(ev, '< pam_end'),
    'exec of the shell to the client\'s end (kernel, sh, exit)': clientEnd - (p.timeOrigin + exec),
  };
  return stages;
}

/** The stages of a pool worker, from the handoff. */
function workerStages(p, clientEnd) {
  const ev = p.events;
  const from = atIndex(ev, '< recvmsg');
  const t0 = ev[from][0];
  const exec = at(ev, 'execve', from);
  return {
    'handoff received to pam_authenticate': at(ev, '> pam_authenticate', from) - t0,
    'PAM: pam_authenticate (the hash)': at(ev, '< pam_authenticate', from) - at(ev, '> pam_authenticate', from),
    'PAM account, become the user, environment, pam_end': at(ev, '< pam_end', from) - at(ev, '< pam_authenticate', from),
    'descriptors, signals, log line, status byte': exec - at(ev, '< pam_end', from),
    'exec of the shell to the client\'s end (kernel, sh, exit)': clientEnd - (p.timeOrigin + exec),
  };
}

const results = { started: new Date().toISOString(), loadavgStart: loadavg(), node: process.version, logins: LOGINS, users: {} };
try {
  for (const user of USERS) {
    const r = (results.users[user.method] = { inetd: [], pool: [] });
    for (const [service, stagesOf] of [['inetd', singleShotStages], ['pool', workerStages]]) {
      for (let i = -2; i < LOGINS; i++) {
        const before = new Set(readdirSync(out));
        const end = await login(world.ports[service], user);
        await new Promise((res) => setTimeout(res, 150)); // the pool refills; files land
        if (i < 0) continue;
        for (const f of readdirSync(out)) {
          if (before.has(f) || !f.endsWith('.json')) continue;
          const p = JSON.parse(readFileSync(join(out, f), 'utf8'));
          if (p.events.some((e) => e[1] === 'execve')) r[service].push({ stages: stagesOf(p, end), profile: p.profile });
        }
      }
    }
  }
  const lines = [`rexecd profile, ${results.started.slice(0, 10)}, node ${process.version}, load ${results.loadavgStart.map((x) => x.toFixed(2)).join(' ')}; medians of ${LOGINS} logins each (PAM, --auth pam)`];
  for (const [method, r] of Object.entries(results.users)) {
    for (const service of ['inetd', 'pool']) {
      const runs = r[service];
      lines.push('', `${service === 'inetd' ? 'single-shot under inetd (nowait)' : 'pool worker under inetd (wait), from the handoff'}, ${method} user (${runs.length} runs):`);
      let total = 0;
      for (const stage of Object.keys(runs[0]?.stages ?? {})) {
        const m = median(runs.map((x) => x.stages[stage]));
        total += m;
        lines.push(`  ${m.toFixed(2).padStart(7)} ms  ${stage}`);
      }
      lines.push(`  ${total.toFixed(2).padStart(7)} ms  sum of the medians`);
      if (opt.cpu) lines.push(...topFunctions(runs.map((x) => x.profile).filter(Boolean)));
    }
  }
  results.summary = lines;
  console.log(lines.join('\n'));
  const jsonPath = opt.json ?? join(tmpdir(), `rexecd-profile-${Date.now()}.json`);
  writeFileSync(jsonPath, JSON.stringify(results, null, 2));
  console.log(`\nJSON: ${jsonPath}`);
} finally {
  clearInterval(drain);
  await world.stop();
  // The listener writes its own timeline as it exits, after the world stopped it.
  rmSync(out, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/** The functions with the most self time over all profiles, ms per connection. */
function topFunctions(profiles) {
  const self = new Map();
  for (const p of profiles) {
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const cf = byId.get(id).callFrame;
      const key = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').pop()}:${cf.lineNumber}`;
      self.set(key, (self.get(key) ?? 0) + (p.timeDeltas[i + 1] ?? 0) / 1000);
    });
  }
  return ['  CPU profile, self time per connection:', ...[...self].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([k, ms]) => `    ${(ms / profiles.length).toFixed(2).padStart(6)} ms  ${k}`)];
}
