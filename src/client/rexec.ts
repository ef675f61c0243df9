#!/usr/bin/env node
/**
 * rexec: the client for the rexec(3) protocol.  Talks to any rexecd (ours, Debian's
 * in.rexecd, the BSDs'): resolves the credentials, connects, does the request and
 * relays stdin, stdout and stderr until the server closes.
 *
 *   rexec [options] HOST[:PORT] COMMAND...
 *
 * Exit status: 0 once the command has started (the protocol carries no remote exit
 * status), 1 when the server refused, 2 for errors on this side.
 */
import { Diagnostic } from '../protocol/diagnostics';
import { parseCommandLine, type ClientOptions } from './cli';
import { resolveCredentials } from './credentials';
import { connectToServer } from './connect';
import { Deadline } from './deadline';
import { ClientError, EXIT_LOCAL, EXIT_REFUSED, reason, UsageError } from './errors';
import { handshake } from './handshake';
import { Inbound } from './inbound';
import { openInput } from './input';
import { relay } from './relay';

/** Exit status for "our stdout went away": what a shell shows for SIGPIPE. */
const EXIT_OUTPUT_CLOSED = 141;

/** What to add to a server's diagnostic, when we can say more. */
const HINTS: ReadonlyMap<string, string> = new Map([
  [
    Diagnostic.cantConnectStderr,
    'the server could not connect back to this host for stderr (a firewall here?); -e does without that connection',
  ],
  [Diagnostic.badStderrPort, 'the server refused our stderr port; -e does without that connection'],
]);

function warn(text: string): void {
  process.stderr.write(`rexec: ${text}\n`);
}

function passwordOnCommandLine(argv: readonly string[]): boolean {
  return argv.some((a) => a === '-p' || a === '--password' || a.startsWith('--password=') || /^-[^-]*p/.test(a));
}

async function run(options: ClientOptions): Promise<number> {
  const creds = await resolveCredentials({
    host: options.host,
    user: options.user,
    password: options.password,
    env: process.env,
  });
  const deadline = new Deadline(options.timeoutMs, options.host);
  const inbound = new Inbound();
  let main;
  try {
    main = await connectToServer(options.host, options.port, options.family, deadline, inbound);
  } catch (e) {
    creds.password.fill(0);
    throw e;
  }
  try {
    const { status, early, stderr } = await handshake(main, inbound, creds, options.command, {
      host: options.host,
      noStderr: options.noStderr,
      deadline,
    });
    switch (status.kind) {
      case 'refused': {
        process.stderr.write(`${status.message}\n`);
        const hint = HINTS.get(status.message);
        if (hint) warn(hint);
        main.destroy();
        return EXIT_REFUSED;
      }
      case 'closed': {
        const why = status.error ? ` (${reason(status.error)})` : '';
        // Debian's in.rexecd (and others) close without a word on a failed login.
        warn(
          early
            ? `${options.host} closed the connection instead of connecting back to the stderr port${why}; -e does without that connection`
            : `${options.host} closed the connection without an answer${why}: the login was probably refused`,
        );
        main.destroy();
        return EXIT_REFUSED;
      }
      case 'ok':
        break;
    }
    const end = await relay({
      main,
      inbound,
      stderr,
      input: options.noStdin ? undefined : openInput(() => process.stdin),
      stdout: process.stdout,
      stderrOut: process.stderr,
    });
    switch (end.kind) {
      case 'done':
        return 0;
      case 'output-closed':
        if (end.error.code !== 'EPIPE') warn(`writing the output: ${reason(end.error)}`);
        return end.error.code === 'EPIPE' ? EXIT_OUTPUT_CLOSED : 2;
      case 'broken':
        warn(`${options.host}: ${reason(end.error)}`);
        return 2;
    }
  } catch (e) {
    main.destroy();
    throw e;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'done') return 0;
  // Blank the password out of /proc/PID/cmdline (ps) now that we have it.
  if (passwordOnCommandLine(argv)) process.title = 'rexec';
  return run(parsed.options);
}

main(process.argv.slice(2)).then(
  (code) => {
    // Let pending output drain: every socket is closed, so the loop ends by itself.
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      warn(`${e.message}\nTry 'rexec --help' for more information.`);
      process.exitCode = EXIT_LOCAL;
    } else if (e instanceof ClientError) {
      warn(e.message);
      process.exitCode = e.exitCode;
    } else {
      warn(`internal error: ${(e as Error)?.stack ?? String(e)}`);
      process.exitCode = 2;
    }
  },
);
