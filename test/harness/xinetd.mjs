// xinetd for the tests: Debian's own binary, unpacked (never installed) into the test
// cache by scripts/install-test-deps.sh, run inside a world's namespace (so rexecd
// sees the world's users) with a configuration made from the shipped
// etc/xinetd.d/rexec: launch paths adjusted to this checkout, a loopback port and
// address of the test's own, enabled.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, REXECD, ROOT } from './world.mjs';
import { XINETD } from './cache.mjs';

export const SHIPPED_XINETD = join(ROOT, 'etc', 'xinetd.d', 'rexec');

/** Replace one setting's line; the shipped file must have it (else the test is stale). */
function set(text, pattern, line) {
  if (!pattern.test(text)) throw new Error(`etc/xinetd.d/rexec has no line matching ${pattern}`);
  return text.replace(pattern, line);
}

/**
 * The shipped service, as a test runs it.  id: xinetd's name for it (several
 * services "exec" in one configuration); port, bind: where it listens; ipv6: the
 * shipped `flags = IPv6` turned on; wait: the shipped wait = no, or yes; args: rexecd's.
 */
export function xinetdService({ id, port, bind, ipv6 = false, wait = false, args = [] }) {
  let text = readFileSync(SHIPPED_XINETD, 'utf8');
  text = set(text, /^(\s*)disable(\s*)=\s*yes\s*$/m, '$1disable$2= no');
  text = set(text, /^(\s*)wait(\s*)=\s*no\s*$/m, `$1wait$2= ${wait ? 'yes' : 'no'}`);
  text = set(text, /^(\s*)server(\s*)=.*$/m, `$1server$2= ${NODE}`);
  text = set(text, /^(\s*)server_args(\s*)=.*$/m, `$1server_args$2= ${[REXECD, ...args].join(' ')}`);
  text = set(text, /^(\s*)#bind(\s*)=.*$/m, `$1bind$2= ${bind}`);
  if (ipv6) text = set(text, /^(\s*)#flags(\s*)=\s*IPv6\s*$/m, '$1flags$2= IPv6');
  // Not port 512: /etc/services names "exec" 512, so the service is UNLISTED with
  // its own port, and an id, as one configuration holds several.
  return set(text, /^service exec\n\{\n/m, `service exec\n{\n\tid\t\t= ${id}\n\ttype\t\t= UNLISTED\n\tport\t\t= ${port}\n`);
}

/** pid → parent pid, of every process. */
function parents() {
  const out = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'latin1');
      out.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Every descendant of pid. */
export function descendants(pid) {
  const ppid = parents();
  const out = [];
  const walk = (p) => {
    for (const [c, pp] of ppid) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

/** Wait until none of pids is alive; SIGKILL what is left after ms.  Resolves the pids killed. */
export async function reap(pids, ms = 5000) {
  const alive = () => pids.filter((p) => existsSync(`/proc/${p}`));
  const end = Date.now() + ms;
  while (alive().length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  const left = alive();
  for (const p of left) process.kill(p, 'SIGKILL');
  return left;
}

/**
 * Start xinetd in the world's namespace with these services (texts of xinetdService),
 * in the foreground, its own messages in a file.  Resolves once every port listens:
 * { pid, log(), stop() }.  stop() ends xinetd (SIGTERM) and resolves the processes
 * it started that are still running: xinetd leaves a "wait" server running when it
 * exits.  end() stops it and ends those too (SIGTERM, then SIGKILL after 5 s).
 */
export async function startXinetd(world, services, ports) {
  if (!existsSync(XINETD)) throw new Error(`${XINETD} is missing: run scripts/install-test-deps.sh as root`);
  const conf = join(world.dir, 'xinetd.conf');
  const log = join(world.dir, 'xinetd.log');
  writeFileSync(conf, services.join('\n'));
  const child = spawn('nsenter', ['-m', '-t', String(world.inetdPid), '--', 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', XINETD, '-dontfork', '-f', conf, '-filelog', log, '-pidfile', join(world.dir, 'xinetd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const logText = () => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const end = Date.now() + 10_000;
  for (;;) {
    const listening = execFileSync('ss', ['-ltnH']).toString();
    if (ports.every((p) => new RegExp(`:${p}\\s`).test(listening))) break;
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`xinetd did not listen on ${ports.join(', ')}: ${out}${logText()}`);
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  // nsenter and env exec: the child is xinetd itself.
  const stop = async () => {
    const started = descendants(child.pid);
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    }
    return started.filter((p) => existsSync(`/proc/${p}`));
  };
  return {
    pid: child.pid,
    log: logText,
    stop,
    async end() {
      const left = await stop();
      for (const p of left) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          // gone meanwhile
        }
      }
      return reap(left);
    },
  };
}
