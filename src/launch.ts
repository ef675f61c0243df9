/**
 * Where the connection is, as the launcher handed it over (SPEC §1): fd 0 from
 * inetd, xinetd and systemd's StandardInput=socket; fd 3 from systemd's native
 * socket activation (LISTEN_FDS=1, LISTEN_PID = our pid).
 */
import { closeSync, openSync } from 'node:fs';
import { dup2 } from './sys/socket';

const SD_LISTEN_FDS_START = 3;

/** The fd of the connection to serve. */
export function connectionFd(env: NodeJS.ProcessEnv = process.env): number {
  if (env.LISTEN_PID === String(process.pid) && env.LISTEN_FDS === '1') return SD_LISTEN_FDS_START;
  return 0;
}

/**
 * inetd puts the connection on fds 1 and 2 as well.  Point them at /dev/null, so
 * nothing Node might print (a warning, a crash) can ever reach the client: the
 * connection carries protocol bytes only.  They get their real meaning at exec.
 */
export function silenceStdio(connection: number): void {
  const devnull = openSync('/dev/null', 'r+');
  for (const fd of [1, 2]) if (fd !== connection) dup2(devnull, fd);
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
