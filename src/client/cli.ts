/**
 * The command line, parsed once with yargs into one frozen object.  Options come
 * before HOST; everything after HOST is the command (rsh's rule), so
 * `rexec host ls -l` runs `ls -l` remotely.
 */
import yargs from 'yargs';
import { seconds, UsageError } from '../usage';
import { VERSION } from '../version';
import { DEFAULT_PORT, parsePort, parseTarget } from './target';

export type Family = 0 | 4 | 6;

export interface ClientOptions {
  /** The host as typed, without brackets or port. */
  readonly host: string;
  readonly port: number;
  /** The words of COMMAND joined by single spaces. */
  readonly command: string;
  readonly user: string | undefined;
  readonly password: string | undefined;
  /** -n: send no stdin (the remote command reads EOF at once). */
  readonly noStdin: boolean;
  /** -e: no secondary channel; the server merges stderr into stdout. */
  readonly noStderr: boolean;
  readonly family: Family;
  /** Milliseconds from connecting to the server's answer; 0 = no limit. */
  readonly timeoutMs: number;
}

export type Parsed = { readonly kind: 'run'; readonly options: ClientOptions } | { readonly kind: 'done' };

export const DEFAULT_TIMEOUT = 60;

const EPILOGUE = `Runs COMMAND (its words joined by spaces) on HOST through its rexecd (port 512,
service exec), with your stdin, stdout and stderr connected to it.

Credentials come from -l/-p, then $REXEC_USER and $REXEC_PASSWORD, then ~/.netrc
("machine HOST login USER password PASS", or "default ..."; refused if the file
is readable by group or others), then a "Password:" prompt on the terminal. The
user defaults to your login name.

-p is discouraged: other users can see it in ps until rexec has started, and it
stays in your shell history. Prefer ~/.netrc or the prompt. rexec sends the
password in clear text: use it only on networks you trust.

Exit status: 0 once the server has started the command -- the rexec protocol
carries no remote exit status (append "; echo $?" to the command if you need
it); 1 if the server refused (its message is printed); 2 for errors on this
side: usage, credentials, name lookup, connection, timeout.`;


function optionalString(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) throw new UsageError('an option is given more than once');
  return String(value);
}

export function parseCommandLine(argv: readonly string[], columns = process.stdout.columns): Parsed {
  const y = yargs(argv)
    .scriptName('rexec')
    .usage('usage: rexec [options] HOST[:PORT] COMMAND...')
    .parserConfiguration({
      'halt-at-non-option': true,
      'parse-positional-numbers': false,
      'parse-numbers': false,
      'duplicate-arguments-array': false,
      'boolean-negation': false,
    })
    .option('user', { alias: 'l', type: 'string', requiresArg: true, describe: 'remote user name (default: $REXEC_USER, ~/.netrc, your login name)' })
    .option('password', {
      alias: 'p',
      type: 'string',
      requiresArg: true,
      describe: 'password -- discouraged: visible to others in ps and kept in shell history; use ~/.netrc or the prompt',
    })
    .option('port', { alias: 'P', type: 'string', requiresArg: true, describe: `server port (default: ${DEFAULT_PORT}, or :PORT after HOST)` })
    .option('no-stdin', { alias: 'n', type: 'boolean', describe: 'send no input: the command reads end-of-file at once (like rsh -n)' })
    .option('no-stderr', {
      alias: 'e',
      type: 'boolean',
      describe: "no second connection for the command's stderr: the server merges it into stdout",
    })
    .option('ipv4', { alias: '4', type: 'boolean', describe: 'use IPv4 only' })
    .option('ipv6', { alias: '6', type: 'boolean', describe: 'use IPv6 only' })
    .option('timeout', {
      type: 'string',
      requiresArg: true,
      describe: `seconds to wait for the connection, the server's connect-back and its answer (default: ${DEFAULT_TIMEOUT}; 0: no limit)`,
    })
    .help('help', 'show this help')
    .version('version', 'show the version', `rexec ${VERSION}`)
    .epilogue(EPILOGUE)
    .wrap(Math.min(columns || 80, 100))
    .strict()
    .exitProcess(false)
    .showHelpOnFail(false)
    .fail((message, error) => {
      throw error instanceof UsageError ? error : new UsageError(message ?? error?.message ?? 'bad command line');
    });
  const args = y.parseSync();
  if (args.help || args.version) return { kind: 'done' };

  const words = args._.map(String);
  const [where, ...command] = words;
  if (where === undefined) throw new UsageError('no HOST given');
  if (command.length === 0) throw new UsageError('no COMMAND given');
  const target = parseTarget(where);
  const portText = optionalString(args.port);
  const optionPort = portText === undefined ? undefined : parsePort(portText, '--port');
  if (optionPort !== undefined && target.port !== undefined && optionPort !== target.port) {
    throw new UsageError(`two ports given: ${where} and --port ${portText}`);
  }
  if (args.ipv4 && args.ipv6) throw new UsageError('-4 and -6 exclude each other');
  const timeoutText = optionalString(args.timeout);
  return {
    kind: 'run',
    options: Object.freeze({
      host: target.host,
      port: target.port ?? optionPort ?? DEFAULT_PORT,
      command: command.join(' '),
      user: optionalString(args.user),
      password: optionalString(args.password),
      noStdin: args['no-stdin'] === true,
      noStderr: args['no-stderr'] === true,
      family: args.ipv4 ? 4 : args.ipv6 ? 6 : 0,
      timeoutMs: timeoutText === undefined ? DEFAULT_TIMEOUT * 1000 : Math.round(seconds('timeout', timeoutText, 0, 86400) * 1000),
    }),
  };
}
