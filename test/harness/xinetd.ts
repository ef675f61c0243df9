// xinetd for the tests: Debian's own binary, unpacked (never installed) into the test
// cache by scripts/install-test-deps.sh, run inside a world's namespace (so rexecd
// sees the world's users) with a configuration made from the shipped
// etc/xinetd.d/rexec: launch paths adjusted to this checkout, a loopback port and
// address of the test's own, enabled.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XINETD } from './cache';
import { NODE, REXECD, ROOT } from './paths';
import { Watched, childPids } from './processes';
import { sleep, waitFor } from './wait';
import type { World } from './world';

export const SHIPPED_XINETD = join(ROOT, 'etc', 'xinetd.d', 'rexec');

/** Replace one setting's line; the shipped file must have it (else the test is stale). */
function set(text: string, pattern: RegExp, line: string): string {
  if (!pattern.test(text)) throw new Error(`etc/xinetd.d/rexec has no line matching ${pattern}`);
  return text.replace(pattern, line);
}

export interface XinetdServiceOptions {
  /** xinetd's name for the service (one configuration holds several "exec"). */
  readonly id: string;
  readonly port: number;
  /** The address it listens on. */
  readonly bind: string;
  /** The shipped `#flags = IPv6` turned on. */
  readonly ipv6?: boolean;
  /** The shipped `wait = no`, or yes. */
  readonly wait?: boolean;
  /** rexecd's arguments. */
  readonly args?: readonly string[];
}

/** The shipped service, as a test runs it. */
export function xinetdService({ id, port, bind, ipv6 = false, wait = false, args = [] }: XinetdServiceOptions): string {
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

/** Every descendant of pid. */
export function descendants(pid: number): number[] {
  return childPids(pid).flatMap((c) => [c, ...descendants(c)]);
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

/** Wait until none of pids is alive; SIGKILL what is left after ms.  Resolves the pids killed. */
export async function reap(pids: readonly number[], ms = 5000): Promise<number[]> {
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) await sleep(50);
  const left = pids.filter(alive);
  for (const p of left) process.kill(p, 'SIGKILL');
  return left;
}

export interface Xinetd {
  readonly pid: number;
  /** xinetd's own messages (-filelog). */
  log(): string;
  /**
   * SIGTERM, and its exit; resolves the processes it started that are still running:
   * xinetd leaves a "wait" server running when it exits.
   */
  stop(): Promise<number[]>;
  /** stop(), then those processes too (SIGTERM, SIGKILL after 5 s); resolves the ones killed. */
  end(): Promise<number[]>;
}

/**
 * Start xinetd in the world's namespace with these services (texts of
 * xinetdService), in the foreground; resolves once every port listens.
 */
export async function startXinetd<S extends string>(world: World<S>, services: readonly string[], ports: readonly number[]): Promise<Xinetd> {
  if (!existsSync(XINETD)) throw new Error(`${XINETD} is missing: run scripts/install-test-deps.sh as root`);
  const conf = join(world.dir, 'xinetd.conf');
  const logFile = join(world.dir, 'xinetd.log');
  writeFileSync(conf, services.join('\n'));
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  // nsenter and env exec: the process is xinetd itself.
  const xinetd = new Watched('nsenter', world.inside(['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', XINETD, '-dontfork', '-f', conf, '-filelog', logFile, '-pidfile', join(world.dir, 'xinetd.pid')]));
  try {
    await waitFor(
      () => {
        if (!xinetd.running) throw new Error(`xinetd exited: ${xinetd.output()}${log()}`);
        const listening = execFileSync('ss', ['-ltnH']).toString();
        return ports.every((p) => new RegExp(`:${p}\\s`).test(listening));
      },
      () => `xinetd did not listen on ${ports.join(', ')}: ${xinetd.output()}${log()}`,
    );
  } catch (e) {
    await xinetd.stop();
    throw e;
  }
  const stop = async (): Promise<number[]> => {
    const started = descendants(xinetd.pid);
    await xinetd.stop();
    return started.filter(alive);
  };
  return {
    pid: xinetd.pid,
    log,
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
