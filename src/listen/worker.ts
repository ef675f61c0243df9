/**
 * A pre-started single-use worker of the listener.  Everything a login needs that
 * does not depend on the request is done before it says "ready" on fd 3: the code
 * is loaded, the authentication method prepared (PAM: pam_start, which loads the
 * service's modules), NSS warmed.  Then it waits for one request and serves it with
 * the same code as under inetd (session.ts), ending as the user's shell; the
 * outcome goes back to the listener for its per-source penalties.
 */
import { openLog } from '../log';
import type { Options } from '../options';
import { diagnosticBytes, Diagnostic } from '../protocol/diagnostics';
import { Connection } from '../io/connection';
import { armBackstop, serveRequest, sessionContext, type Outcome } from '../session';
import { close } from '../sys/fd';
import { recvWithFds } from '../sys/listen-socket';
import { getPasswd } from '../sys/passwd';
import { declareAll } from '../sys/koffi';
import { exitNow, rememberIgnoredSignals, writeRaw } from '../sys/process';
import { sendNow } from '../sys/socket';
import { decodeHandoff, HANDOFF_MAX } from './handoff';
import { OUTCOME_BYTES, sayReady } from './pool';

export function serveAsWorker(ipc: number, options: Options): never {
  const log = openLog();
  let reported = false;
  const report = (outcome: Outcome): void => {
    if (reported) return; // one login, one outcome
    reported = true;
    try {
      sendNow(ipc, Buffer.from([OUTCOME_BYTES[outcome]]));
    } catch {
      // The listener is gone: nobody keeps penalties any more.
    }
  };
  const ctx = sessionContext(options, log, report);
  try {
    ctx.authenticator().prepare();
  } catch {
    // A configuration error or PAM that cannot start: the login meets it again,
    // logs it and answers "Try again.".
  }
  getPasswd(Buffer.from('root')); // NSS: the passwd and group databases opened once
  rememberIgnoredSignals();
  declareAll(); // every C function the login calls, declared now rather than then
  sayReady(ipc);

  const message = recvWithFds(ipc, HANDOFF_MAX);
  if (!message) return exitNow(0); // the listener is gone, or retired this worker
  const h = decodeHandoff(message.data);
  message.data.fill(0);
  const [fd, stderr] = message.fds as [number, number | undefined];
  if (!h || message.fds.length !== (h.hasStderr ? 2 : 1)) {
    log.daemon('err', `malformed handoff from the listener (${message.data.length} bytes, ${message.fds.length} fds)`);
    if (fd !== undefined) writeRaw(fd, diagnosticBytes(Diagnostic.tryAgain));
    for (const d of message.fds) close(d);
    report('error');
    return exitNow(1);
  }
  const deadline = performance.now() + h.remainingMs;
  armBackstop(deadline, options);
  let conn: Connection;
  try {
    conn = new Connection(fd, deadline);
  } catch (e) {
    log.daemon('info', `client left before its login started (${(e as Error).message})`);
    report('gone');
    return exitNow(1);
  }
  return serveRequest(conn, { stderr, user: h.user, password: h.password, command: h.command }, ctx);
}
