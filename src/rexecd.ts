#!/usr/bin/env node
/**
 * rexecd: the rexec(3) server.  Started once per connection by inetd, xinetd or
 * systemd (Accept=yes), it reads the request from the connection, authenticates the
 * user and execs the user's shell; nothing of rexecd remains while the command runs.
 * With --listen it accepts connections itself and starts one rexecd per connection.
 */
import './guard'; // first: nothing Node prints may reach the client
import type { Authenticator } from './auth/authenticator';
import { selectAuthenticator } from './auth/select';
import { openLog, type Log } from './log';
import { commandLimit, parseOptions, UsageError, USAGE, type Options } from './options';
import { diagnosticBytes, Diagnostic } from './protocol/diagnostics';
import { serveConnection } from './session';
import { argMax, exitNow, writeRaw } from './sys/process';
import { isListening, isTcpSocket } from './sys/socket';
import { connectionFd, inetdCommand, silenceStdio } from './launch';
import { VERSION } from './version';

const hint = (fd: number): string => `rexecd: fd ${fd} is not a TCP connection.
rexecd serves one connection handed to it by a super-server.  Either add it to
/etc/inetd.conf:

  exec  stream  tcp  nowait  root  ${inetdCommand()}

or try it on a loopback port:   rexecd --listen 127.0.0.1:5120
(see rexecd --help and rexecd(8))
`;

const LISTENING = (fd: number): string =>
  `fd ${fd} is a listening socket, not a connection: rexecd serves one accepted connection per process ` +
  '(inetd: "nowait"; systemd: Accept=yes), or listens itself with --listen';

function main(argv: readonly string[]): void {
  // The deadline counts from the start of this process (performance.now()'s origin),
  // the nearest we know to the accept: a start-up slowed by load eats into it.
  const start = 0;
  const fd = connectionFd();
  const onConnection = isTcpSocket(fd);
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (onConnection) {
      // Inside inetd nobody sees stderr: log the mistake, tell the client to retry.
      openLog().daemon('err', `configuration error: ${e.message}`);
      writeRaw(fd, diagnosticBytes(Diagnostic.tryAgain));
      exitNow(1);
    }
    process.stderr.write(`rexecd: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (options.version) {
    process.stdout.write(`rexecd ${VERSION}\n`);
    return;
  }
  const context = (log: Log) => {
    let authenticator: Authenticator | undefined;
    return {
      options,
      log,
      limits: { user: options.maxName, password: options.maxPassword, command: commandLimit(argMax()) },
      authenticator: () => (authenticator ??= selectAuthenticator(options, log)),
    };
  };
  if (options.poolWorker) {
    const log = openLog();
    (require('./listen/worker') as typeof import('./listen/worker')).servePooled(3, context(log), log);
  }
  if (options.listen.length > 0) {
    // Loaded only here: the per-connection path never pays for the listener.
    (require('./listen/listener') as typeof import('./listen/listener')).listen(options);
    return;
  }
  if (onConnection && isListening(fd)) {
    openLog().daemon('err', `configuration error: ${LISTENING(fd)}`);
    process.stderr.write(`rexecd: ${LISTENING(fd)}\n`);
    process.exit(2);
  }
  if (!onConnection) {
    process.stderr.write(hint(fd));
    process.exit(2);
  }
  silenceStdio(fd);
  serveConnection(fd, context(openLog()), start);
}

main(process.argv.slice(2));
