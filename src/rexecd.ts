#!/usr/bin/env node
/**
 * rexecd: the rexec(3) server.  Given an accepted connection (inetd, xinetd,
 * systemd Accept=yes) it reads the request, authenticates the user and execs the
 * user's shell; nothing of rexecd remains while the command runs.  Given a
 * listening socket (inetd "wait", systemd Accept=no, or its own with --listen) it
 * becomes the listener: it reads requests and hands each to a pre-started
 * single-use worker that does the same from authentication on.
 */
import './guard'; // first: nothing Node prints may reach the client
import { findLaunch, inetdCommand, silenceStdio, type Launch } from './launch';
import { openLog } from './log';
import { parseOptions, UsageError, USAGE, type Options } from './options';
import { diagnosticBytes, Diagnostic } from './protocol/diagnostics';
import { exitNow, writeRaw } from './sys/process';
import { VERSION } from './version';

const hint = (fd: number): string => `rexecd: fd ${fd} is not a TCP connection.
rexecd serves connections handed to it by a super-server.  Either add it to
/etc/inetd.conf:

  exec  stream  tcp  nowait  root  ${inetdCommand()}

or try it on a loopback port:   rexecd --listen 127.0.0.1:5120
(see rexecd --help and rexecd(8))
`;

function main(argv: readonly string[]): void {
  const launch = findLaunch();
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (launch.kind !== 'none') return configurationError(launch, e.message);
    process.stderr.write(`rexecd: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (options.help || options.version) {
    // Under a launcher fd 1 is the client's connection: only protocol bytes go there.
    if (launch.kind !== 'none') return configurationError(launch, `${options.help ? '--help' : '--version'} on the launcher's command line`);
    return void process.stdout.write(options.help ? USAGE : versionText());
  }

  if (options.poolWorker) {
    // Loaded only here and below: each path pays only for its own code.
    const { serveAsWorker } = require('./listen/worker') as typeof import('./listen/worker');
    return serveAsWorker(3, options);
  }
  if (options.listen.length > 0 && launch.kind !== 'none') {
    // inetd or systemd handed over a socket: --listen in the same command line is a
    // mistake (the connection would go unserved, or the handed socket unused).
    return configurationError(launch, `--listen, but ${launch.kind === 'connection' ? 'a connection' : 'listening sockets'} came from the launcher (drop --listen from the inetd or systemd line)`);
  }
  if (options.listen.length > 0 || launch.kind === 'listener') {
    const { startListener } = require('./listen/listener') as typeof import('./listen/listener');
    return startListener(options, launch.kind === 'listener' ? launch : undefined);
  }
  if (launch.kind === 'none') {
    process.stderr.write(launch.problem ? `rexecd: ${launch.problem}\n` : hint(launch.fd));
    process.exit(2);
  }
  silenceStdio([launch.fd]);
  const log = openLog();
  const { serveConnection, sessionContext } = require('./session') as typeof import('./session');
  serveConnection(launch.fd, sessionContext(options, log));
}

/**
 * A mistake on the launcher's command line, where nobody sees stderr: the log says
 * it, a client hears "Try again." (then the graceful close: no reset overtakes it).
 */
function configurationError(launch: Launch, why: string): never {
  openLog().daemon('err', `configuration error: ${why}`);
  if (launch.kind === 'connection') {
    writeRaw(launch.fd, diagnosticBytes(Diagnostic.tryAgain));
    (require('./io/connection') as typeof import('./io/connection')).closeGracefully(launch.fd);
  }
  return exitNow(1);
}

/** The version, and whether the loader could use its code cache (src/loader.ts). */
function versionText(): string {
  const cache = (globalThis as { rexecdCodeCache?: string }).rexecdCodeCache;
  return `rexecd ${VERSION}\n` + (cache ? `code cache: ${cache}\n` : '');
}

main(process.argv.slice(2));
