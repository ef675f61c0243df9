/**
 * rexecd's options (protocol.md §7; every option in rexecd(8)), parsed once at the edge with node:util parseArgs and
 * normalised into one frozen object.  Nothing else in the code looks at argv.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_LIMITS, MAX_ARG_STRLEN, type FieldLimits } from './protocol/request';
import { argMax } from './sys/process';
import { seconds, UsageError } from './usage';

export type AuthMethod = 'pam' | 'shadow' | 'auto';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** The most --max-name and --max-password may be (bytes). */
export const MAX_FIELD = 4096;

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
  /** Listener: per-source limits and penalties (protocol.md §6, after sshd's). */
  readonly sourceLimits: SourceLimitOptions;
  readonly help: boolean;
  readonly version: boolean;
  /** Internal: a pre-started per-connection process of --listen (fd 3). */
  readonly poolWorker: boolean;
}

/**
 * The listener's limits on unauthenticated connections, after OpenSSH sshd's
 * MaxStartups, PerSourceMaxStartups, PerSourceNetBlockSize, PerSourcePenalties and
 * PerSourcePenaltyExemptList (sshd_config(5)); see rexecd(8).
 */
export interface SourceLimitOptions {
  /** --max-startups start:rate:full: random early drop from `start` unauthenticated connections, all at `full`. */
  readonly maxStartups: { readonly start: number; readonly rate: number; readonly full: number };
  /** --per-source-max-startups: unauthenticated connections one source may hold (Infinity: no limit). */
  readonly perSourceMaxStartups: number;
  /** --per-source-net-block-size v4:v6: prefix lengths that make addresses one source. */
  readonly netBlockSize: { readonly v4: number; readonly v6: number };
  /** --per-source-penalties; undefined: off. */
  readonly penalties: PenaltyOptions | undefined;
  /** --per-source-penalty-exempt-list: address[/bits] entries no limit applies to. */
  readonly exempt: readonly string[];
}

/** Seconds of penalty per event, and the thresholds, as sshd's PerSourcePenalties. */
export interface PenaltyOptions {
  /** A refused login (any reason). */
  readonly authfail: number;
  /** A connection that ended without a complete request: closed early, or refused as invalid. */
  readonly noauth: number;
  /** A connection that held on until the deadline. */
  readonly graceExceeded: number;
  /** Penalties count only once they add up to more than this. */
  readonly min: number;
  /** No source is refused for longer than this at a time. */
  readonly max: number;
  /** Sources remembered per address family, at most. */
  readonly maxSources: number;
  /** When the table is full: forget the soonest-to-expire (permissive) or refuse every new source (deny-all). */
  readonly overflow: 'permissive' | 'deny-all';
}

export const DEFAULT_PENALTIES: PenaltyOptions = Object.freeze({ authfail: 5, noauth: 1, graceExceeded: 10, min: 15, max: 600, maxSources: 65536, overflow: 'permissive' });
export const DEFAULT_SOURCE_LIMITS: SourceLimitOptions = Object.freeze({
  maxStartups: Object.freeze({ start: 10, rate: 30, full: 100 }),
  // Below --max-startups' start: one source alone never sets off the random early
  // drop that every other source would suffer.
  perSourceMaxStartups: 8,
  netBlockSize: Object.freeze({ v4: 32, v6: 64 }),
  penalties: DEFAULT_PENALTIES,
  exempt: Object.freeze([]),
});

export { UsageError };

export const USAGE = `usage: rexecd [options]
Serves the connection a launcher hands it (inetd, xinetd "nowait", systemd
Accept=yes), or as a listener the listening socket (inetd, xinetd "wait",
systemd Accept=no), or listens itself with --listen.  See rexecd(8).

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
  --max-startups START[:RATE:FULL]
                           listener: drop new unauthenticated connections at
                           random from START of them, RATE% rising to all at
                           FULL (default: 10:30:100, as sshd's MaxStartups)
  --per-source-max-startups N|none
                           listener: unauthenticated connections one source
                           may hold (default: 8)
  --per-source-net-block-size V4[:V6]
                           listener: prefix lengths that make one source
                           (default: 32:64)
  --per-source-penalties LIST|no
                           listener: refuse a source for a while after
                           failures (default: authfail:5s,noauth:1s,
                           grace-exceeded:10s,min:15s,max:10m,
                           max-sources:65536,overflow:permissive)
  --per-source-penalty-exempt-list ADDR[/BITS],...
                           listener: sources no limit applies to
  -h, --help               show this help
  -V, --version            show the version and whether the code cache is used
  --build-code-cache       write the code cache beside the program, and exit
                           (alone; after upgrading Node.js)
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
  'max-startups': { type: 'string' },
  'per-source-max-startups': { type: 'string' },
  'per-source-net-block-size': { type: 'string' },
  'per-source-penalties': { type: 'string' },
  'per-source-penalty-exempt-list': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
  'pool-worker': { type: 'boolean' },
} as const;

function secondsOr(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  return text === undefined ? fallback : seconds(name, text, min, max);
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new UsageError(`--${name}: "${text}" is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name}: ${text} is not between ${min} and ${max}`);
  return value;
}

/** A duration as sshd writes them: 30, 30s, 5m, 1h (seconds by default). */
function duration(name: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)([smh]?)$/.exec(text);
  if (!m) throw new UsageError(`--${name}: "${text}" is not a duration (e.g. 5s, 10m)`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600 }[m[2] as '' | 's' | 'm' | 'h'];
}

function sourceLimits(values: Record<string, string | boolean | string[] | undefined>): SourceLimitOptions {
  const d = DEFAULT_SOURCE_LIMITS;
  const text = (k: string): string | undefined => values[k] as string | undefined;
  let maxStartups = d.maxStartups;
  const ms = text('max-startups');
  if (ms !== undefined) {
    const m = /^(\d+)(?::(\d+):(\d+))?$/.exec(ms);
    const [start, rate, full] = m ? [Number(m[1]), m[2] === undefined ? 100 : Number(m[2]), m[3] === undefined ? Number(m[1]) : Number(m[3])] : [NaN, NaN, NaN];
    if (!m || start < 1 || rate > 100 || full < start) throw new UsageError(`--max-startups: "${ms}" is not START or START:RATE:FULL with 1 <= START <= FULL and RATE <= 100`);
    maxStartups = { start, rate, full };
  }
  const per = text('per-source-max-startups');
  const perSourceMaxStartups = per === undefined ? d.perSourceMaxStartups : per === 'none' ? Infinity : integer('per-source-max-startups', per, 0, 1, 65536);
  let netBlockSize = d.netBlockSize;
  const nb = text('per-source-net-block-size');
  if (nb !== undefined) {
    const m = /^(\d+)(?::(\d+))?$/.exec(nb);
    const [v4, v6] = m ? [Number(m[1]), m[2] === undefined ? d.netBlockSize.v6 : Number(m[2])] : [NaN, NaN];
    if (!m || v4 > 32 || v6 > 128) throw new UsageError(`--per-source-net-block-size: "${nb}" is not V4[:V6] (0-32, 0-128)`);
    netBlockSize = { v4, v6 };
  }
  return { maxStartups, perSourceMaxStartups, netBlockSize, penalties: penalties(text('per-source-penalties')), exempt: exemptList(text('per-source-penalty-exempt-list')) };
}

const PENALTY_KEYS: Record<string, keyof PenaltyOptions> = {
  authfail: 'authfail',
  noauth: 'noauth',
  'grace-exceeded': 'graceExceeded',
  min: 'min',
  max: 'max',
  'max-sources': 'maxSources',
  overflow: 'overflow',
};

function penalties(text: string | undefined): PenaltyOptions | undefined {
  if (text === undefined || text === 'yes') return DEFAULT_PENALTIES;
  if (text === 'no') return undefined;
  const p: Record<string, unknown> = { ...DEFAULT_PENALTIES };
  for (const item of text.split(',')) {
    const [k, v] = item.split(':', 2) as [string, string | undefined];
    const key = PENALTY_KEYS[k];
    if (!key || v === undefined) throw new UsageError(`--per-source-penalties: "${item}" is not one of ${Object.keys(PENALTY_KEYS).join(', ')} with a value`);
    if (key === 'overflow') {
      if (v !== 'permissive' && v !== 'deny-all') throw new UsageError(`--per-source-penalties: overflow is permissive or deny-all, not "${v}"`);
      p[key] = v;
    } else {
      p[key] = key === 'maxSources' ? integer('per-source-penalties max-sources', v, 0, 1, 1 << 24) : duration('per-source-penalties', v);
    }
  }
  return p as unknown as PenaltyOptions;
}

function exemptList(text: string | undefined): string[] {
  if (text === undefined || text === '') return [];
  const { isIP } = require('node:net') as typeof import('node:net');
  return text.split(',').map((entry) => {
    const [addr, bits] = entry.split('/', 2) as [string, string | undefined];
    const family = isIP(addr);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max))) {
      throw new UsageError(`--per-source-penalty-exempt-list: "${entry}" is not an address or address/bits`);
    }
    return entry;
  });
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
  // No options (the usual inetd line): nothing to parse.  parseArgs costs ~0.6 ms
  // (Node loads and compiles its parser on first use), paid by every connection.
  let values: ReturnType<typeof parseArgs<{ options: typeof spec; strict: true; allowPositionals: false }>>['values'] = {};
  if (argv.length > 0) {
    try {
      ({ values } = parseArgs({ args: [...argv], options: spec, strict: true, allowPositionals: false }));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const auth: string = values.auth ?? 'auto';
  if (auth !== 'pam' && auth !== 'shadow' && auth !== 'auto') throw new UsageError(`--auth: "${auth}" is not pam or shadow`);
  return Object.freeze({
    auth,
    pamService: values['pam-service'] ?? 'rexec',
    allowRoot: values['allow-root'] ?? false,
    allowEmptyPassword: values['allow-empty-password'] ?? false,
    denyFile: values['deny-file'],
    timeout: secondsOr('timeout', values.timeout, 60, 0.1, 86400),
    failDelay: secondsOr('fail-delay', values['fail-delay'], 2, 0, 60),
    maxName: integer('max-name', values['max-name'], DEFAULT_LIMITS.user, 1, MAX_FIELD),
    maxPassword: integer('max-password', values['max-password'], DEFAULT_LIMITS.password, 1, MAX_FIELD),
    logConnections: values.l ?? false,
    logCommands: values['log-commands'] ?? false,
    listen: Object.freeze((values.listen ?? []).map(parseListen)),
    maxConnections: integer('max-connections', values['max-connections'], 64, 1, 65536),
    idleExit: secondsOr('idle-exit', values['idle-exit'], 300, 0, 86400 * 365),
    spare: integer('spare', values.spare, 1, 0, 64),
    sourceLimits: sourceLimits(values),
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

/** The request's field limits (protocol.md §2.3-§2.5): one place computes them. */
export function requestLimits(o: Options): FieldLimits {
  return { user: o.maxName, password: o.maxPassword, command: commandLimit(argMax()) };
}

/** The command limit: one exec argument, and never more than ARG_MAX leaves room for. */
export function commandLimit(argMax: number): number {
  // Room for the environment, argv[0], "-c" and the pointers (protocol.md §2.5).
  const room = argMax > 0 ? argMax - 16384 : MAX_ARG_STRLEN;
  return Math.max(1, Math.min(MAX_ARG_STRLEN, room) - 1);
}
