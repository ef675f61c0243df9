/**
 * A pre-started per-connection rexecd (--listen): everything a connection needs is
 * loaded before it says "ready" on fd 3; then it waits for one request and serves
 * it with the same code as under inetd (session.ts), ending as the user's shell.
 */
import { decodeHandoff, HANDOFF_MAX } from './handoff';
import type { Log } from '../log';
import { serveHandoff, type SessionContext } from '../session';
import { getPasswd } from '../sys/passwd';
import { exitNow } from '../sys/process';
import { close, recvWithFds, sendWithFds } from '../sys/socket';

export function servePooled(ipc: number, ctx: SessionContext, log: Log): never {
  // Pay now, while no client waits: the authentication method's libraries, NSS.
  try {
    ctx.authenticator();
  } catch {
    // A configuration error: the session meets it again, logs it and says "Try again.".
  }
  getPasswd(Buffer.from('root'));
  sendWithFds(ipc, Buffer.from('R'), []);
  const message = recvWithFds(ipc, HANDOFF_MAX);
  if (!message) exitNow(0); // the listener is gone: nothing to serve
  close(ipc);
  const h = decodeHandoff(message.data);
  message.data.fill(0);
  if (!h || message.fds.length !== (h.hasStderr ? 2 : 1)) {
    log.daemon('err', `malformed handoff from the listener (${message.data.length} bytes, ${message.fds.length} fds)`);
    for (const fd of message.fds) close(fd);
    exitNow(1);
  }
  const [fd, stderr] = message.fds as [number, number | undefined];
  serveHandoff(fd, { stderr, user: h.user, password: h.password, command: h.command }, ctx, performance.now() + h.remainingMs);
}
