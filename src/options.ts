/**
 * rexecd's options (SPEC §6), parsed once at the edge with node:util parseArgs and
 * normalised into one frozen object.  Nothing else in the code looks at argv.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS, MAX_ARG_STRLEN, type FieldLimits } from './protocol/request';
import { argMax } from './sys/process';

export type AuthMethod = 'pam' | 'shadow' | 'auto';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface Options {
  readonly auth: AuthMethod;
  readonly pamService: string;
  readonly allowRoot: boolean;
  readonly allowEmptyPassword: boolean;
  readonly denyFile: string | undefined;
  /** Seconds from accept to the status byte. */
  readonly timeout: number;
  /** Seconds from the start of authentication to any refusal. */
  readonly failDelay: number;
  readonly maxName: number;
  readonly maxPassword: number;
  readonly logConnections: boolean;
  readonly logCommands: boolean;
  readonly listen: readonly ListenAddress[];
  /** Listener: connections at once, reading requests or running sessions. */
  readonly maxConnections: number;
  /** Listener started by a launcher: seconds without connections before it exits (0: never). */
  readonly idleExit: number;
  /** Listener: pre-started workers kept ready. */
  readonly spare: number;
  readonly help: boolean;
  readonly version: boolean;
  /** Internal: a pre-started per-connection process of --listen (fd 3). */
  readonly poolWorker: boolean;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `usage: rexecd [options]
Serves one rexec connection on fd 0 (inetd, xinetd, systemd Accept=yes),
or listens itself with --listen.

  --auth pam|shadow        how passwords are checked (default: pam when libpam
                           loads, else shadow)
  --pam-service NAME       PAM service name (default: rexec)
  -i, --allow-root         let uid 0 log in (default: refused)
  --allow-empty-password   accept accounts with an empty password (default: refused)
  --deny-file FILE         refuse the users named in FILE (ftpusers format)
  --timeout SEC            deadline from accept to the status byte (default: 60)
  --fail-delay SEC         every refusal takes this long from the start of
                           authentication (default: 2)
  --max-name N             longest user name in bytes (default: 16)
  --max-password N         longest password in bytes (default: 16)
  -l                       log every connection
  --log-commands           log each command's text (default: off; commands can
                           hold secrets)
  --listen [HOST:]PORT     accept connections on HOST:PORT (default host
                           127.0.0.1; repeatable) instead of serving fd 0
  --max-connections N      listener: most connections at once (default: 64)
  --idle-exit SEC          listener started by inetd "wait" or systemd
                           Accept=no: exit after SEC without connections, the
                           launcher starts it again (default: 300; 0: never)
  --spare N                listener: pre-started workers kept ready (default: 1)
  -h, --help               show this help
  -V, --version            show the version
`;

const spec = {
  auth: { type: 'string' },
  'pam-service': { type: 'string' },
  'allow-root': { type: 'boolean', short: 'i' },
  'allow-empty-password': { type: 'boolean' },
  'deny-file': { type: 'string' },
  timeout: { type: 'string' },
  'fail-delay': { type: 'string' },
  'max-name': { type: 'string' },
  'max-password': { type: 'string' },
  l: { type: 'boolean', short: 'l' },
  'log-commands': { type: 'boolean' },
  listen: { type: 'string', multiple: true },
  'max-connections': { type: 'string' },
  'idle-exit': { type: 'string' },
  spare: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  'pool-worker': { type: 'boolean' },
} as const;

function seconds(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new UsageError(`--${name}: "${text}" is not a number of seconds`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name}: ${text} is not between ${min} and ${max} seconds`);
  return value;
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name}: "${text}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name}: ${text} is not between ${min} and ${max}`);
  return value;
}

export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]:|([^:]+):)?(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new UsageError(`--listen: "${text}" is not [HOST:]PORT (e.g. 5120, 127.0.0.1:5120, [::1]:5120)`);
  }
  return { host: m[1] ?? m[2] ?? '127.0.0.1', port };
}

export function parseOptions(argv: readonly string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const auth: string = values.auth ?? 'auto';
  if (auth !== 'pam' && auth !== 'shadow' && auth !== 'auto') throw new UsageError(`--auth: "${auth}" is not pam or shadow`);
  return Object.freeze({
    auth,
    pamService: values['pam-service'] ?? 'rexec',
    allowRoot: values['allow-root'] ?? false,
    allowEmptyPassword: values['allow-empty-password'] ?? false,
    denyFile: values['deny-file'],
    timeout: seconds('timeout', values.timeout, 60, 0.1, 86400),
    failDelay: seconds('fail-delay', values['fail-delay'], 2, 0, 60),
    maxName: integer('max-name', values['max-name'], DEFAULT_LIMITS.user, 1, 4096),
    maxPassword: integer('max-password', values['max-password'], DEFAULT_LIMITS.password, 1, 4096),
    logConnections: values.l ?? false,
    logCommands: values['log-commands'] ?? false,
    listen: Object.freeze((values.listen ?? []).map(parseListen)),
    maxConnections: integer('max-connections', values['max-connections'], 64, 1, 65536),
    idleExit: seconds('idle-exit', values['idle-exit'], 300, 0, 86400 * 365),
    spare: integer('spare', values.spare, 1, 0, 64),
    help: values.help ?? false,
    version: values.version ?? false,
    poolWorker: values['pool-worker'] ?? false,
  });
}

/**
 * The argv a pool worker gets: the options that shape one connection, as given
 * (normalised), and none of the listener's own.
 */
export function workerArgv(o: Options): string[] {
  const argv = ['--pool-worker', '--auth', o.auth, '--pam-service', o.pamService, '--timeout', String(o.timeout), '--fail-delay', String(o.failDelay)];
  argv.push('--max-name', String(o.maxName), '--max-password', String(o.maxPassword));
  if (o.allowRoot) argv.push('--allow-root');
  if (o.allowEmptyPassword) argv.push('--allow-empty-password');
  if (o.denyFile !== undefined) argv.push('--deny-file', o.denyFile);
  if (o.logCommands) argv.push('--log-commands');
  return argv;
}

/** The request's field limits (SPEC §2.3-2.5): one place computes them. */
export function requestLimits(o: Options): FieldLimits {
  return { user: o.maxName, password: o.maxPassword, command: commandLimit(argMax()) };
}

/** The command limit: one exec argument, and never more than ARG_MAX leaves room for. */
export function commandLimit(argMax: number): number {
  // Room for the environment, argv[0], "-c" and the pointers (SPEC §2.5).
  const room = argMax > 0 ? argMax - 16384 : MAX_ARG_STRLEN;
  return Math.max(1, Math.min(MAX_ARG_STRLEN, room) - 1);
}
