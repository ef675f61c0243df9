// How the installed program should be started: what each way costs a connection.
// Installs the build twice into a temporary prefix (scripts/install.sh: the node
// flavour and --sea), then times, with hyperfine -N, full logins (glibc's rexec_af()
// client, a SHA-512 user, --auth shadow, the command `true`) under one private
// openbsd-inetd whose services start rexecd as:
//
//   symlink #!node   PREFIX/sbin/rexecd -> lib/rexecd/rexecd.cjs, `#!/usr/bin/node`
//   node named       inetd names node itself: /usr/bin/node node PREFIX/lib/rexecd/rexecd.cjs
//   #!/usr/bin/env   the loader with `#!/usr/bin/env node` (one more exec, a PATH search)
//   sh wrapper       a /bin/sh script that execs node with the loader
//   single exe       PREFIX/sbin/rexecd -> the single executable (npm run build:sea)
//
// and `env -i node -e 0` and each way's `--version` (start-up alone, no connection),
// and what each indirection costs by itself: /bin/true started directly, through
// `#!/usr/bin/env` and through a sh wrapper.  The ways alternate: the runs are made
// in rounds, each round in another order, and the samples pooled, so load from
// elsewhere falls on all alike.
// Needs root, a build (npm run build && npm run build:sea) and the packages of
// scripts/install-test-deps.sh.  Run it on a quiet machine.
//   node scripts/bench-launch.mjs [--runs N] [--json FILE]
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { harness } from './compile-tests.mjs';

const { startWorld } = harness('world');
const { ROOT } = harness('paths');
const { clientPath } = harness('clients');

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '60' }, rounds: { type: 'string', default: '6' }, json: { type: 'string' } } });
const NODE = '/usr/bin/node';
const dir = mkdtempSync(join(tmpdir(), 'rexecd-bench-launch-'));
chmodSync(dir, 0o755);
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function install(prefix, args) {
  execFileSync('bash', [join(ROOT, 'scripts', 'install.sh'), ...args], { env: { PATH: '/usr/bin:/bin', PREFIX: prefix, NODE }, stdio: ['ignore', 'ignore', 'inherit'] });
}
const nodePrefix = join(dir, 'node');
const seaPrefix = join(dir, 'sea');
install(nodePrefix, []);
install(seaPrefix, ['--sea']);

// The loader with another #! line, beside the installed one (its code cache is tied
// to the bundle file, which stays the installed one: same directory).
const loader = readFileSync(join(nodePrefix, 'lib/rexecd/rexecd.cjs'), 'utf8').split('\n').slice(1).join('\n');
const envLoader = join(nodePrefix, 'lib/rexecd/rexecd-env.cjs');
writeFileSync(envLoader, `#!/usr/bin/env node\n${loader}`, { mode: 0o755 });
const wrapper = join(nodePrefix, 'sbin/rexecd-wrapper');
writeFileSync(wrapper, `#!/bin/sh\nexec ${NODE} ${nodePrefix}/lib/rexecd/rexecd.cjs "$@"\n`, { mode: 0o755 });
// The indirections alone, around a program that does nothing.
const trueEnv = join(dir, 'true-env');
writeFileSync(trueEnv, '#!/usr/bin/env true\n', { mode: 0o755 });
const trueSh = join(dir, 'true-sh');
writeFileSync(trueSh, '#!/bin/sh\nexec /bin/true "$@"\n', { mode: 0o755 });

const ARGS = ['--auth', 'shadow', '--fail-delay', '0.3'];
const WAYS = {
  'symlink #!node': { program: join(nodePrefix, 'sbin/rexecd'), args: ARGS },
  'node named': { program: NODE, args: [join(nodePrefix, 'lib/rexecd/rexecd.cjs'), ...ARGS] },
  '#!/usr/bin/env': { program: envLoader, args: ARGS },
  'sh wrapper': { program: wrapper, args: ARGS },
  'single exe': { program: join(seaPrefix, 'sbin/rexecd'), args: ARGS },
};
const versionOf = {
  'symlink #!node': [join(nodePrefix, 'sbin/rexecd')],
  'node named': [NODE, join(nodePrefix, 'lib/rexecd/rexecd.cjs')],
  '#!/usr/bin/env': [envLoader],
  'sh wrapper': [wrapper],
  'single exe': [join(seaPrefix, 'sbin/rexecd')],
};
for (const [way, argv] of Object.entries(versionOf)) {
  const out = execFileSync(argv[0], [...argv.slice(1), '--version'], { env: {}, encoding: 'utf8' });
  if (!out.includes('code cache: used')) throw new Error(`${way}: the code cache is not used:\n${out}`);
}

/**
 * Run a program without blocking this process: the world's syslog sink lives here,
 * and a rexecd whose log datagrams nobody reads waits in syslog(3) for ever.
 */
function run(file, args) {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (status) => resolve({ status, output }));
  });
}

const w = await startWorld({ users: [{ name: 'benchuser', password: 'bench-pass', method: 'sha512crypt' }], services: WAYS });
const client = clientPath();
const results = {};
try {
  // Each way must log in before it is timed.
  for (const way of Object.keys(WAYS)) {
    const r = await run(client, ['-n', '-l', 'benchuser', '-p', 'bench-pass', '127.0.0.1', String(w.ports[way]), 'true']);
    if (r.status !== 0) throw new Error(`${way}: the login failed (${r.status}): ${r.output}`);
  }
  /** Time commands ([label, command]) in rounds, each round in another order; pool the samples. */
  const hyperfine = async (name, commands) => {
    const rounds = Number(opts.rounds);
    const perRound = Math.ceil(Number(opts.runs) / rounds);
    const samples = new Map(commands.map(([label]) => [label, { wall: [], cpu: [] }]));
    for (let round = 0; round < rounds; round++) {
      const order = commands.map((_, i) => commands[(i + round) % commands.length]);
      const json = join(dir, `${name}.json`);
      const args = ['-N', '--warmup', '2', '--runs', String(perRound), '--export-json', json, '--style', 'none'];
      for (const [label, cmd] of order) args.push('-n', label, cmd);
      const r = await run('hyperfine', args);
      if (r.status !== 0) throw new Error(`hyperfine failed (${r.status}): ${args.join(' ')}\n${r.output}`);
      for (const x of JSON.parse(readFileSync(json, 'utf8')).results) {
        const s = samples.get(x.command);
        s.wall.push(...x.times);
        // hyperfine gives CPU time as a mean per command and round.
        s.cpu.push(...x.times.map(() => x.user + x.system));
      }
    }
    const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
    for (const [label, s] of samples) {
      const m = mean(s.wall);
      const sd = Math.sqrt(mean(s.wall.map((x) => (x - m) ** 2)));
      results[`${name}: ${label}`] = { median: median(s.wall) * 1000, mean: m * 1000, stddev: sd * 1000, min: Math.min(...s.wall) * 1000, cpu: mean(s.cpu) * 1000, n: s.wall.length };
    }
  };
  // hyperfine -N splits on spaces: none of these paths has one.
  await hyperfine('exec', [['/bin/true', '/bin/true'], ['#!/usr/bin/env', trueEnv], ['sh wrapper', trueSh]]);
  await hyperfine('start', [['env -i node -e 0', `env -i ${NODE} -e 0`], ...Object.entries(versionOf).map(([way, argv]) => [way, `env -i ${argv.join(' ')} --version`])]);
  await hyperfine('login', Object.keys(WAYS).map((way) => [way, `${client} -n -l benchuser -p bench-pass 127.0.0.1 ${w.ports[way]} true`]));
} finally {
  await w.stop();
}

console.log(`${new Date().toISOString()}  ${cpus().length} × ${cpus()[0]?.model}, load ${loadavg().map((x) => x.toFixed(2)).join(' ')}, node ${process.version}`);
console.log('| what | median ms | mean ± sd ms | min ms | CPU ms (mean) | runs |\n|---|--:|--:|--:|--:|--:|');
// For logins hyperfine's CPU time is the client's, not rexecd's: not shown.
for (const [what, r] of Object.entries(results)) if (what.startsWith('login')) r.cpu = NaN;
for (const [what, r] of Object.entries(results)) console.log(`| ${what} | ${r.median.toFixed(2)} | ${r.mean.toFixed(2)} ± ${r.stddev.toFixed(2)} | ${r.min.toFixed(2)} | ${Number.isNaN(r.cpu) ? '—' : r.cpu.toFixed(2)} | ${r.n} |`);
if (opts.json) writeFileSync(opts.json, JSON.stringify(results, null, 2));
