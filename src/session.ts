/**
 * One rexec connection, from the first byte to the exec, in the order of protocol.md §2 (its step numbers are used below):
 *
 *   request (port, connect-back, user, password, command) → authenticate
 *     → account policy → become the user → home directory → status byte → exec
 *
 * Everything is synchronous and bounded by one deadline.  A refusal is one
 * "\001text\n" to the client and one log line with the real reason, and ends the
 * process where it happens.  Under inetd the process reads the request itself
 * (serveConnection); a pool worker gets it from the listener (serveRequest); from
 * authentication on both are the same code.
 */
import type { Authenticator } from './auth/authenticator';
import { PamUnavailable } from './auth/pam';
import { policyRefusal } from './auth/policy';
import { AuthConfigError, selectAuthenticator } from './auth/select';
import { Connection, isClientGone } from './io/connection';
import { printable, quotedName, requestLog } from './io/log-texts';
import type { Log } from './log';
import { requestLimits, type Options } from './options';
import { Diagnostic, type DiagnosticText } from './protocol/diagnostics';
import { RequestReader, type FieldLimits, type Request } from './protocol/request';
import { becomeUser } from './exec/become-user';
import { commandEnvironment, loginShell } from './exec/environment';
import { execShell, prepareDescriptors } from './exec/exec-shell';
import { ENOTCONN } from './sys/errno';
import { SysError } from './sys/koffi';
import { alarm, exitNow } from './sys/process';
import { connectFrom, withPort } from './sys/socket';

/** How a login ended, for a listener that keeps per-source penalties (protocol.md §6.3). */
export type Outcome = 'login' | 'refused' | 'invalid' | 'timeout' | 'gone' | 'error';

export interface SessionContext {
  readonly options: Options;
  readonly limits: FieldLimits;
  readonly log: Log;
  /** Chosen lazily: a request refused before authentication never loads libpam. */
  readonly authenticator: () => Authenticator;
  /**
   * Told the outcome as soon as it is known, and before the client hears it (a
   * pool worker tells its listener); only the first call counts.
   */
  readonly report?: (outcome: Outcome) => void;
}

/** What one connection needs, whoever reads its request. */
export function sessionContext(options: Options, log: Log, report?: SessionContext['report']): SessionContext {
  let authenticator: Authenticator | undefined;
  return {
    options,
    log,
    limits: requestLimits(options),
    authenticator: () => (authenticator ??= selectAuthenticator(options, log)),
    report,
  };
}

/** A request ready to be served, with the stderr channel already dialled for it. */
export interface ReadRequest extends Omit<Request, 'stderrPort'> {
  readonly stderr: number | undefined;
}

/**
 * inetd, xinetd, systemd Accept=yes: the connection on `fd`, nothing read yet.
 * The deadline counts from the start of this process (performance.now()'s origin),
 * the nearest we know to the accept: a start-up slowed by load eats into it.
 */
export function serveConnection(fd: number, ctx: SessionContext): never {
  const { options, log } = ctx;
  const deadline = options.timeout * 1000;
  armBackstop(deadline, options);
  let conn: Connection;
  try {
    conn = new Connection(fd, deadline);
  } catch (e) {
    // ENOTCONN: the client reset the connection before we started; no mistake of ours.
    if (e instanceof SysError && e.errno === ENOTCONN) log.daemon('info', `client left before rexecd started (${e.message})`);
    else log.daemon('err', `cannot get the peer address of fd ${fd}: ${(e as Error).message}`);
    return exitNow(1);
  }
  const from = conn.peer.address;
  if (options.logConnections) log.daemon('info', requestLog.connection(from, conn.peer.port));
  try {
    // 1-5. The port, the connection back to it before anything else is read, the fields.
    const reader = new RequestReader(ctx.limits);
    let stderr: number | undefined;
    for (;;) {
      const event = conn.read(reader);
      switch (event.kind) {
        case 'timeout':
          return end(conn, ctx, 'timeout', undefined, 'daemon', requestLog.timeout(options.timeout, reader.waitingFor, from));
        case 'closed':
          return end(conn, ctx, 'gone', undefined, 'daemon', requestLog.clientLeft(reader.waitingFor, from, event.how));
        case 'refuse':
          return end(conn, ctx, 'invalid', event.diagnostic, 'daemon', requestLog.refused(event, from));
        case 'connect-back':
          try {
            stderr = connectFrom(conn.local, withPort(conn.peer, event.port), conn.deadline);
          } catch (e) {
            if (performance.now() >= conn.deadline) return end(conn, ctx, 'timeout', Diagnostic.cantConnectStderr, 'daemon', requestLog.timeout(options.timeout, reader.waitingFor, from));
            return end(conn, ctx, 'invalid', Diagnostic.cantConnectStderr, 'daemon', requestLog.cantConnect(from, event.port, (e as Error).message));
          }
          reader.connected();
          continue;
        case 'request':
          return serveRequest(conn, { ...event.request, stderr }, ctx);
      }
    }
  } catch (e) {
    return failed(conn, ctx, e);
  }
}

/** 7-9: a complete request, from authentication to the exec of the user's shell. */
export function serveRequest(conn: Connection, request: ReadRequest, ctx: SessionContext): never {
  const { options, log } = ctx;
  const from = conn.peer.address;
  try {
    const who = `user ${quotedName(request.user)} from ${from}`;

    // 7. Authentication, then the account policy; one answer for every refusal,
    // given --fail-delay after authentication started, whatever the reason.
    const authStart = performance.now();
    const refuseLogin = (facility: 'auth' | 'daemon', why: string): never => {
      // The listener hears it now, not after the delay: the penalty counts against
      // the source's next connections at once, and this one no longer holds a slot.
      ctx.report?.('refused');
      sleepUntil(authStart + options.failDelay * 1000);
      return end(conn, ctx, 'refused', Diagnostic.loginIncorrect, facility, why);
    };
    let result;
    try {
      result = ctx.authenticator().authenticate({ user: request.user, password: request.password, rhost: from });
    } finally {
      request.password.fill(0);
    }
    if (!result.ok) return refuseLogin('auth', `refused ${who}: ${result.reason}`);
    const { account, session } = result;
    const policy = policyRefusal(account, options);
    if (policy !== undefined) {
      session.end();
      return refuseLogin('auth', `refused ${who}: ${policy}`);
    }
    if (performance.now() > conn.deadline) {
      // Answered as a refusal, not closed in silence: a client that made the hash
      // outlast the deadline would otherwise learn that the password was right.
      session.end();
      return refuseLogin('daemon', `timeout (${options.timeout} s) during authentication of ${who}`);
    }

    // Becoming the user, then the home directory as the user.
    try {
      becomeUser(account, session);
    } catch (e) {
      session.end();
      return end(conn, ctx, 'error', Diagnostic.tryAgain, 'daemon', `cannot become ${who}: ${(e as Error).message}`);
    }
    try {
      process.chdir(account.dir);
    } catch (e) {
      session.end();
      return end(conn, ctx, 'error', Diagnostic.noRemoteDirectory, 'daemon', `no home directory ${account.dir} for ${who}: ${(e as NodeJS.ErrnoException).code}`);
    }
    process.umask(0o022);
    const env = commandEnvironment(account, from, session.environment());
    session.end();

    // 8-9. The descriptors as the shell gets them, the status byte, the shell.
    prepareDescriptors(conn.fd, request.stderr);
    log.auth('info', `user ${account.name} from ${from}` + (options.logCommands ? `: ${printable(request.command)}` : ''));
    try {
      conn.sendStatusOk();
    } catch (e) {
      if (isClientGone(e)) return end(conn, ctx, 'gone', undefined, 'daemon', requestLog.clientLeft('status byte', from, e.message));
      throw e;
    }
    ctx.report?.('login');
    return execShell({ shell: loginShell(account), command: request.command, env });
  } catch (e) {
    return failed(conn, ctx, e);
  }
}

/** Ends the session: the log line, the diagnostic (if the client may hear one), the exit. */
function end(conn: Connection, ctx: SessionContext, outcome: Outcome, text: DiagnosticText | undefined, facility: 'auth' | 'daemon', why: string): never {
  const level = outcome === 'gone' ? 'info' : 'notice';
  if (facility === 'auth') ctx.log.auth('notice', why);
  else ctx.log.daemon(level, why);
  // The listener hears the outcome before the client does: a client that tries
  // again at once is then judged with this refusal's penalty already counted.
  ctx.report?.(outcome);
  if (text !== undefined) conn.sendDiagnostic(text);
  return exitNow(1);
}

/**
 * Anything not foreseen above: a system call that failed, PAM that cannot run.  The
 * client hears "Try again." unless the status byte has gone out (then it hears
 * nothing more: a "\001" never follows the "\0").
 */
function failed(conn: Connection, ctx: SessionContext, e: unknown): never {
  const from = conn.peer.address;
  if (e instanceof AuthConfigError) ctx.log.daemon('err', `configuration error: ${e.message}`);
  else if (e instanceof PamUnavailable) ctx.log.daemon('err', `PAM unavailable for ${from}: ${e.message}`);
  else if (e instanceof SysError) ctx.log.daemon('err', `failed serving ${from}: ${e.message}`);
  else ctx.log.daemon('err', `failed serving ${from}: ${(e as Error).name}: ${(e as Error).message}`);
  if (!conn.statusSent) conn.sendDiagnostic(Diagnostic.tryAgain);
  ctx.report?.('error');
  return exitNow(1);
}

/**
 * A backstop for a step no poll can bound (a PAM module that hangs on its server):
 * SIGALRM's default action ends the process.  Cancelled just before the exec.
 */
export function armBackstop(deadline: number, options: Options): void {
  alarm(Math.ceil((deadline - performance.now()) / 1000 + options.failDelay) + 5);
}

function sleepUntil(when: number): void {
  const ms = when - performance.now();
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
