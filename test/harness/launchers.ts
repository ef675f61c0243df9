// Launchers other than the world's openbsd-inetd, started inside the world's mount
// namespace (so rexecd sees the world's users, PAM files and /dev/log):
//
//   socketActivate(world, { inetd })   systemd's own socket activation with Accept=yes,
//       as the real `systemd-socket-activate` does it (it needs no systemd as PID 1):
//       --inetd  the connection on fds 0 and 1 (StandardInput=socket)
//       native   the connection on fd 3, LISTEN_FDS=1, LISTEN_PID=<rexecd's pid>
//       accept: false   Accept=no: on the first connection the listening socket
//                goes to rexecd on fd 3 (systemd-socket-activate execs it: no restart)
//       host '::ffff:127.0.0.1': an IPv6 socket that IPv4 clients of 127.0.0.1
//       reach as IPv4-mapped peers, like a systemd ListenStream=512 socket
//   startListener(world)               rexecd --listen, its own listener
//
// Every launcher starts with a clean environment (env -i) and listens on loopback only.
import { NODE, REXECD } from './paths';
import { startWhenReady, type Watched } from './processes';
import { hostPort, type Loopback } from './sockets';
import { freePort, type World } from './world';

/** A launcher listening on a loopback port. */
export interface Launched {
  readonly port: number;
  /** Where clients connect. */
  readonly host: Loopback;
  /** The launcher's process: nsenter and env exec, so its pid is the launcher's own. */
  readonly proc: Watched;
}

const CLEAN_ENV = ['env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin'];

/**
 * Every test connection comes from 127.0.0.1 or ::1: the listener's per-source
 * limits and penalties (SPEC §5a) are off unless a test turns them on (its own
 * args come later and win).
 */
export const NO_SOURCE_LIMITS = ['--max-startups', '65536', '--per-source-max-startups', 'none', '--per-source-penalties', 'no'];

export interface SocketActivateOptions {
  /** --inetd: the connection on fds 0 and 1; otherwise fd 3 and LISTEN_*. */
  readonly inetd?: boolean;
  /** false: Accept=no, the listening socket itself goes to the program on the first connection. */
  readonly accept?: boolean;
  /** Where it listens: '::ffff:127.0.0.1' is an IPv6 socket that clients reach at 127.0.0.1. */
  readonly host?: Loopback | '::ffff:127.0.0.1';
  /** The command (default: node and the bundle). */
  readonly program?: readonly string[];
  /** rexecd's arguments. */
  readonly args?: readonly string[];
  /** Passed by systemd-socket-activate -E, on top of what it sets itself. */
  readonly setenv?: Readonly<Record<string, string>>;
}

export async function socketActivate<S extends string>(
  world: World<S>,
  { inetd = false, accept = true, host = '127.0.0.1', program = [NODE, REXECD], args = [], setenv = {} }: SocketActivateOptions = {},
): Promise<Launched> {
  const port = await freePort();
  const address = hostPort(host, port);
  const argv = [
    ...CLEAN_ENV,
    'systemd-socket-activate', '--listen', address, ...(accept ? ['--accept'] : []),
    ...(inetd ? ['--inetd'] : []),
    ...Object.entries(setenv).map(([k, v]) => `--setenv=${k}=${v}`),
    ...program, ...args,
  ];
  const proc = await startWhenReady('nsenter', world.inside(argv), `Listening on ${address}`);
  return { port, host: host === '::ffff:127.0.0.1' ? '127.0.0.1' : host, proc };
}

export interface ListenerOptions {
  /** The command (default: node and the bundle). */
  readonly program?: readonly string[];
  /** One --listen for each, on the same port. */
  readonly hosts?: readonly Loopback[];
  /** rexecd's other arguments, after NO_SOURCE_LIMITS. */
  readonly args?: readonly string[];
}

/** rexecd --listen, resolved once it says it listens. */
export async function startListener<S extends string>(world: World<S>, { program = [NODE, REXECD], hosts = ['127.0.0.1', '::1'], args = [] }: ListenerOptions = {}): Promise<Launched> {
  const port = await freePort();
  const listen = hosts.flatMap((h) => ['--listen', hostPort(h, port)]);
  const proc = await startWhenReady('nsenter', world.inside(['env', '-i', ...program, ...listen, ...NO_SOURCE_LIMITS, ...args]), 'listening on');
  return { port, host: hosts[0] ?? '127.0.0.1', proc };
}
