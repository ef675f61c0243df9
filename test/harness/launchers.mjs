// Launchers other than the world's openbsd-inetd, started inside the world's mount
// namespace (so rexecd sees the world's users, PAM files and /dev/log):
//
//   socketActivate(world, { inetd })   systemd's own socket activation with Accept=yes,
//       as the real `systemd-socket-activate` does it (it needs no systemd as PID 1):
//       --inetd  the connection on fds 0 and 1 (StandardInput=socket)
//       native   the connection on fd 3, LISTEN_FDS=1, LISTEN_PID=<rexecd's pid>
//       accept: false   Accept=no: on the first connection the listening socket
//                goes to rexecd on fd 3 (systemd-socket-activate execs it: no restart)
//       host '::ffff:127.0.0.1': an IPv6 socket that IPv4 clients of 127.0.0.1
//       reach as IPv4-mapped peers, like a systemd ListenStream=512 socket
//   startListener(world, args)   rexecd --listen on 127.0.0.1 and ::1
//
// Every launcher starts with a clean environment (env -i) and listens on loopback only.
import { spawn } from 'node:child_process';
import { NODE, REXECD, freePort } from './world.mjs';

const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/**
 * opts: { inetd: boolean, host: '127.0.0.1' | '::1' | '::ffff:127.0.0.1' (clients
 * connect to 127.0.0.1), program: [argv...] (default node
 * + dist/rexecd.cjs), args: [rexecd args], setenv: { NAME: value } (passed to the
 * command by systemd-socket-activate -E, on top of what it sets itself) }
 * Resolves { port, host, pid, output(), stop() }.
 */
export async function socketActivate(world, { inetd = false, accept = true, host = '127.0.0.1', program = [NODE, REXECD], args = [], setenv = {} } = {}) {
  if (!LOOPBACK.includes(host)) throw new Error(`socketActivate: loopback only, not ${host}`);
  const port = await freePort();
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const argv = [
    '-m', '-t', String(world.inetdPid), '--',
    'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    'systemd-socket-activate', '--listen', address, ...(accept ? ['--accept'] : []),
    ...(inetd ? ['--inetd'] : []),
    ...Object.entries(setenv).map(([k, v]) => `--setenv=${k}=${v}`),
    ...program, ...args,
  ];
  // nsenter and env exec: the pid is systemd-socket-activate's own.
  const child = spawn('nsenter', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const end = Date.now() + 10000;
  while (!out.includes(`Listening on ${address}`)) {
    if (child.exitCode !== null) throw new Error(`systemd-socket-activate exited ${child.exitCode}: ${out}`);
    if (Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`systemd-socket-activate did not listen on ${address}: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    host,
    pid: child.pid,
    /** What systemd-socket-activate (and rexecd before it silences fds 1-2) printed. */
    output: () => out,
    /** Whether the process (systemd-socket-activate, or what it exec'd) has ended. */
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

/**
 * rexecd --listen on 127.0.0.1:PORT and [::1]:PORT inside the world's namespace,
 * started with a clean environment; resolves once it says it listens.
 * Resolves { port, child, pid, output() }; the caller ends it (child.kill).
 */
/**
 * Every test connection comes from 127.0.0.1 or ::1: the listener's per-source
 * limits and penalties (SPEC §5a) are off unless a test turns them on (its own
 * args come later and win).
 */
export const NO_SOURCE_LIMITS = ['--max-startups', '65536', '--per-source-max-startups', 'none', '--per-source-penalties', 'no'];

export async function startListener(world, args) {
  const port = await freePort();
  const child = spawn('nsenter', ['-m', '-t', String(world.inetdPid), '--', 'env', '-i', NODE, REXECD, '--listen', `127.0.0.1:${port}`, '--listen', `[::1]:${port}`, ...NO_SOURCE_LIMITS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const end = Date.now() + 10000;
  while (!out.includes('listening on')) {
    if (child.exitCode !== null || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`listener did not start: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  // nsenter -m and env exec: the child is the listener itself
  return { port, child, pid: child.pid, output: () => out };
}
