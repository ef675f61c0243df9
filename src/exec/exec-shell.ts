/**
 * The last step (protocol.md §2.9, §4.3): the connection on fds 0 and 1, the stderr channel (or
 * the connection) on fd 2, all three blocking and inheritable, every other fd
 * closed by the exec, signals as a fresh process has them, and this process
 * replaced by the user's shell running `-c command`.
 */
import { basename } from 'node:path';
import { strerror } from '../sys/koffi';
import { alarm, execve, exitNow, resetSignals, setsid, writeRaw } from '../sys/process';
import { closeOnExecFrom, dup2, makeInheritableBlocking } from '../sys/fd';

export interface ShellExec {
  readonly shell: string;
  readonly command: Buffer;
  readonly env: readonly string[];
}

/**
 * Everything the exec needs that can fail, done before the status byte so that no
 * "\001" ever follows a "\0" (protocol.md §2.8).  Afterwards fd 0 is the connection, and
 * this process leads a session of its own (protocol.md §4.3): whatever started it (inetd
 * does setsid, a listener or a pre-started worker may not), the command never shares
 * the launcher's session or process group, nor its signals.
 */
export function prepareDescriptors(connection: number, stderr: number | undefined): void {
  setsid();
  dup2(connection, 0);
  dup2(connection, 1);
  dup2(stderr ?? connection, 2);
  for (const fd of [0, 1, 2]) makeInheritableBlocking(fd);
  closeOnExecFrom(3);
  resetSignals();
}

/** Never returns: the shell runs in this process, or the failure is reported and we exit. */
export function execShell(x: ShellExec): never {
  alarm(0);
  const errno = execve(x.shell, [basename(x.shell), '-c', x.command], x.env);
  // Past the status byte: no flag, just what a shell would say (protocol.md §2.9).
  writeRaw(2, Buffer.from(`${x.shell}: ${strerror(errno)}\n`));
  return exitNow(1);
}
