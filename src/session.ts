/**
 * One rexec connection, from the first byte to the exec, as SPEC §2 lists it:
 *
 *   request → stderr channel → authenticate → account policy → become user
 *           → home directory → status byte → exec
 *
 * Everything is synchronous and bounded by one deadline.  Every refusal is one
 * "\001text\n" to the client and one log line with the real reason.  Under inetd
 * the process reads the request itself (serveConnection); under --listen the
 * listener has read it and hands it over (serveHandoff); from authentication on,
 * both are the same code.
 */
import type { Authenticator } from './auth/authenticator';
import { PamUnavailable } from './auth/pam';
import { policyRefusal } from './auth/policy';
import { ClientClosed, Connection, Timeout } from './io/connection';
import { requestLog } from './io/log-texts';
import { connectStderr } from './io/stderr-channel';
import type { Log } from './log';
import type { Options } from './options';
import { Diagnostic, type DiagnosticText } from './protocol/diagnostics';
import { parseStderrPort, type FieldLimits, type FieldName } from './protocol/request';
import { becomeUser } from './exec/become-user';
import { commandEnvironment, loginShell } from './exec/environment';
import { execShell, prepareDescriptors } from './exec/exec-shell';
import { SysError } from './sys/koffi';
import { alarm, exitNow } from './sys/process';

export interface SessionContext {
  readonly options: Options;
  readonly limits: FieldLimits;
  readonly log: Log;
  /** Chosen lazily: a request refused before authentication never loads libpam. */
  readonly authenticator: () => Authenticator;
}

/** A complete request, and the stderr channel already dialled for it. */
export interface ReadRequest {
  readonly stderr: number | undefined;
  readonly user: Buffer;
  readonly password: Buffer;
  readonly command: Buffer;
}

/** Ends the session: the client has been told (or must not be), the log has the reason. */
class Refusal extends Error {}
type Refuse = (text: DiagnosticText | undefined, facility: 'auth' | 'daemon', why: string) => never;

/** inetd, xinetd, systemd: the connection on `fd`, nothing read yet. */
export function serveConnection(fd: number, ctx: SessionContext, start: number): never {
  return serve(fd, ctx, start + ctx.options.timeout * 1000, readRequest);
}

/** --listen: the listener read the request and dialled the stderr channel. */
export function serveHandoff(fd: number, request: ReadRequest, ctx: SessionContext, deadline: number): never {
  return serve(fd, ctx, deadline, () => request);
}

/** Steps 1-5: the stderr port, the connection back to it before anything else is read, the fields. */
function readRequest(conn: Connection, ctx: SessionContext, refuse: Refuse): ReadRequest {
  const from = conn.peer.address;
  // (Under --listen the listener said this when it accepted the connection.)
  if (ctx.options.logConnections) ctx.log.daemon('info', requestLog.connection(from, conn.peer.port));
  const read = (name: FieldName): Buffer => {
    const r = conn.readField(name, ctx.limits);
    if (r.kind === 'refuse') return refuse(r.diagnostic, 'daemon', requestLog.fieldRefused(r.diagnostic, from));
    return r.value;
  };
  const port = parseStderrPort(read('port'));
  if (port.kind === 'bad') refuse(Diagnostic.badStderrPort, 'daemon', requestLog.badPort(from, port.why));
  let stderr: number | undefined;
  if (port.kind === 'port') {
    try {
      stderr = connectStderr(conn, port.port);
    } catch (e) {
      refuse(Diagnostic.cantConnectStderr, 'daemon', requestLog.cantConnect(from, port.port, (e as Error).message));
    }
  }
  return { stderr, user: read('user'), password: read('password'), command: read('command') };
}

function serve(fd: number, ctx: SessionContext, deadline: number, request: (conn: Connection, ctx: SessionContext, refuse: Refuse) => ReadRequest): never {
  const { options, log } = ctx;
  // Backstop for a step no poll can bound (a PAM module that hangs on its server):
  // SIGALRM's default action ends the process.  Cancelled just before the exec.
  alarm(Math.ceil((deadline - performance.now()) / 1000 + options.failDelay) + 5);

  let conn: Connection;
  try {
    conn = new Connection(fd, deadline);
  } catch (e) {
    // ENOTCONN: the client reset the connection before we started; no mistake of ours.
    const gone = e instanceof SysError && e.code === 'ENOTCONN';
    log.daemon(gone ? 'info' : 'err', gone ? `client left before rexecd started (${(e as Error).message})` : `cannot get the peer address of fd ${fd}: ${(e as Error).message}`);
    exitNow(1);
  }
  const from = conn.peer.address;
  const refuse: Refuse = (text, facility, why) => {
    if (facility === 'auth') log.auth('notice', why);
    else log.daemon('notice', why);
    if (text !== undefined) {
      try {
        conn.sendDiagnostic(text);
      } catch {
        // The client is gone; the log line above already says why we ended.
      }
    }
    throw new Refusal(why);
  };

  let statusSent = false;
  try {
    const { stderr, user, password, command } = request(conn, ctx, refuse);
    const who = `user ${quotedName(user)} from ${from}`;

    // 7. Authentication, then the account policy; one answer for every refusal.
    const authStart = performance.now();
    let result;
    try {
      result = ctx.authenticator().authenticate({ user, password, rhost: from });
    } finally {
      password.fill(0);
    }
    const refusal = result.ok ? policyRefusal(result.account, options) : result.reason;
    if (refusal !== undefined) {
      if (result.ok) result.session.end();
      sleepUntil(authStart + options.failDelay * 1000);
      refuse(Diagnostic.loginIncorrect, 'auth', `refused ${who}: ${refusal}`);
    }
    if (!result.ok) throw new Error('unreachable');
    if (performance.now() > deadline) refuse(undefined, 'daemon', `timeout (${options.timeout} s) during authentication of ${who}`);
    const { account, session } = result;

    // Becoming the user, then the home directory as the user.
    try {
      becomeUser(account, session);
    } catch (e) {
      session.end();
      refuse(Diagnostic.tryAgain, 'daemon', `cannot become ${who}: ${(e as Error).message}`);
    }
    try {
      process.chdir(account.dir);
    } catch (e) {
      session.end();
      refuse(Diagnostic.noRemoteDirectory, 'daemon', `no home directory ${account.dir} for ${who}: ${(e as NodeJS.ErrnoException).code}`);
    }
    process.umask(0o022);
    const env = commandEnvironment(account, from, session.environment());
    session.end();

    // 8-9. The descriptors as the shell gets them, the status byte, the shell.
    prepareDescriptors(conn.fd, stderr);
    log.auth('info', `user ${account.name} from ${from}` + (options.logCommands ? `: ${printable(command)}` : ''));
    statusSent = true;
    conn.sendStatusOk(0);
    execShell({ shell: loginShell(account), command, env });
  } catch (e) {
    if (e instanceof Refusal) exitNow(1);
    if (e instanceof Timeout) {
      log.daemon('notice', requestLog.timeout(options.timeout, e.waitingFor, from));
      exitNow(1);
    }
    if (e instanceof ClientClosed) {
      log.daemon('info', requestLog.clientLeft(e.message, from));
      exitNow(1);
    }
    const why = e instanceof SysError || e instanceof PamUnavailable ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
    log.daemon('err', e instanceof PamUnavailable ? `PAM unavailable for ${from}: ${why}` : `failed serving ${from}: ${why}`);
    if (!statusSent) {
      try {
        conn.sendDiagnostic(Diagnostic.tryAgain);
      } catch {
        // Nothing more to tell a client that is gone.
      }
    }
    exitNow(1);
  }
}

/** Text a client sent (a command), for the log: control bytes (or what `escape` matches) as \xNN, length capped. */
export function printable(bytes: Buffer, max = 200, escape: RegExp = /[\x00-\x1f\x7f]/g): string {
  const text = bytes.subarray(0, max).toString('utf8').replace(escape, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return bytes.length > max ? `${text}...` : text;
}

/**
 * A user name as the client sent it, for the log: in double quotes, with '"', '\'
 * and control bytes as \xNN, so that no name can pass for the text around it (a
 * name "a from 10.9.8.7" must not read as an address).  The fail2ban filter
 * (etc/fail2ban/filter.d/rexecd.conf) relies on this.
 */
export function quotedName(bytes: Buffer): string {
  return `"${printable(bytes, 200, /[\x00-\x1f\x7f"\\]/g)}"`;
}

function sleepUntil(when: number): void {
  const ms = when - performance.now();
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
