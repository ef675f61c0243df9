/**
 * What the launcher handed over (protocol.md §1.1, §1.2), found once at start:
 *
 *   inetd, xinetd "nowait", systemd Accept=yes with StandardInput=socket
 *                               an accepted connection on fd 0
 *   systemd Accept=yes, native  the connection on fd 3 (LISTEN_FDS=1, LISTEN_PID)
 *   inetd, xinetd "wait"        the listening socket on fd 0
 *   systemd Accept=no           listening sockets on fds 3... (LISTEN_FDS=n)
 *   none of these               a terminal: rexecd prints a hint (or --listen)
 */
import { closeSync, openSync } from 'node:fs';
import { dup2 } from './sys/fd';
import { tcpSocketKind } from './sys/socket';

const SD_LISTEN_FDS_START = 3;

export type Launch =
  | { readonly kind: 'connection'; readonly fd: number }
  | { readonly kind: 'listener'; readonly fds: readonly number[]; readonly by: 'inetd' | 'systemd' }
  /** fd 0 is not a socket rexecd can serve; `problem` says why when LISTEN_FDS named odd fds. */
  | { readonly kind: 'none'; readonly fd: number; readonly problem?: string };

/**
 * The fds systemd passed to this very process (sd_listen_fds(3)): LISTEN_PID must
 * be our pid, else the variables were meant for another process and are ignored.
 */
export function systemdFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number[] {
  if (env.LISTEN_PID !== String(pid)) return [];
  const n = Number(env.LISTEN_FDS);
  if (!Number.isInteger(n) || n < 1 || n > 64) return [];
  return Array.from({ length: n }, (_, i) => SD_LISTEN_FDS_START + i);
}

/** What this process was started with; the LISTEN_* variables are unset on the way. */
export function findLaunch(env: NodeJS.ProcessEnv = process.env): Launch {
  const fds = systemdFds(env);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (fds.length > 0) {
    const kinds = fds.map(tcpSocketKind);
    if (fds.length === 1 && kinds[0] === 'connection') return { kind: 'connection', fd: fds[0]! };
    if (kinds.every((k) => k === 'listener')) return { kind: 'listener', fds, by: 'systemd' };
    return { kind: 'none', fd: 0, problem: `systemd passed fds ${fds.join(', ')} (${kinds.join(', ')}): one TCP connection (Accept=yes) or only TCP listening sockets (Accept=no)` };
  }
  const kind = tcpSocketKind(0);
  if (kind === 'connection') return { kind: 'connection', fd: 0 };
  if (kind === 'listener') return { kind: 'listener', fds: [0], by: 'inetd' };
  return { kind: 'none', fd: 0 };
}

/**
 * inetd puts the socket on fds 1 and 2 as well.  Point them at /dev/null, so
 * nothing Node might print (a warning, a crash) can ever reach a client: the
 * connection carries protocol bytes only.  They get their real meaning at exec.
 */
export function silenceStdio(keep: readonly number[]): void {
  const devnull = openSync('/dev/null', 'r+');
  for (const fd of [1, 2]) if (!keep.includes(fd)) dup2(devnull, fd);
  if (devnull > 2) closeSync(devnull);
}

/** True in a Node single executable application (npm run build:sea). */
export function isSingleExecutable(): boolean {
  try {
    return (require('node:sea') as { isSea(): boolean }).isSea();
  } catch {
    return false; // node:sea is missing before Node 20.12: not a single executable then
  }
}

/** How inetd.conf starts this very program. */
export function inetdCommand(): string {
  return isSingleExecutable() ? `${process.execPath}  rexecd` : `${process.execPath}  node ${process.argv[1] ?? '/path/to/rexecd.js'}`;
}
