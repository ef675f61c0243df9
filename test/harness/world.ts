// A private world for one test file: test users that exist only inside a private
// mount namespace (an overlay over /etc carries the crafted passwd, shadow, group,
// PAM files and nologin; the host's files are never touched), a private syslog
// socket, and a real openbsd-inetd serving rexecd on loopback ports.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NODE, REXECD, ROOT } from './paths';
import { childPids, exited, pidOf } from './processes';
import { sleep, waitFor } from './wait';
import { SyslogSink, type LogLine } from './syslog-sink';

/** Our PAM service file as shipped (etc/pam.d/rexec). */
export const SHIPPED_PAM_SERVICE = readFileSync(join(ROOT, 'etc', 'pam.d', 'rexec'), 'utf8');

/** The methods of mkpasswd -m that the tests use. */
export type HashMethod = 'yescrypt' | 'sha512crypt' | 'sha256crypt' | 'md5crypt' | 'bcrypt' | 'descrypt';

const hashCache = new Map<string, string>();
/** A password hash made by mkpasswd (Debian package whois). */
export function mkpasswd(password: string, method: HashMethod = 'yescrypt'): string {
  const key = `${method}\0${password}`;
  let hash = hashCache.get(key);
  if (hash === undefined) {
    hash = execFileSync('mkpasswd', ['-m', method, '-s'], { input: password }).toString().trim();
    hashCache.set(key, hash);
  }
  return hash;
}

/** Two loopback ports free on 127.0.0.1 and ::1 alike. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const ok = await Promise.all(
      ['127.0.0.1', '::1'].map(
        (host) =>
          new Promise<boolean>((resolve) => {
            const s = createServer();
            s.once('error', () => resolve(false));
            s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return port;
  }
}

/** The /etc/shadow ageing fields, in days ('' = empty field). */
export interface ShadowAgeing {
  readonly lastChange: number;
  readonly max: number;
  readonly inactive: number | '';
  readonly expire: number | '';
}

export interface UserSpec {
  readonly name: string;
  readonly password: string;
  /** How the password is hashed (default yescrypt); hash overrides it. */
  readonly method?: HashMethod;
  readonly hash?: string;
  readonly uid?: number;
  /** Default: a group of the user's own with gid = uid. */
  readonly gid?: number;
  /** Default: a directory made under the world's; null: a path that does not exist. */
  readonly home?: string | null;
  readonly homeOwner?: number;
  readonly homeMode?: number;
  readonly shell?: string;
  /** Supplementary groups: [name, gid]. */
  readonly groups?: readonly (readonly [string, number])[];
  readonly shadow?: Partial<ShadowAgeing>;
}

/** A user as the world made it. */
export interface WorldUser extends UserSpec {
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/**
 * What inetd runs for a service: rexecd's arguments (run by NODE), or a program with
 * its arguments (default: NODE and rexecd); wait: inetd hands over the listening
 * socket, one server per address family, instead of each connection.
 */
export type Service = readonly string[] | { readonly program?: string; readonly args: readonly string[]; readonly wait?: boolean };

export interface WorldOptions<S extends string> {
  readonly users?: readonly UserSpec[];
  /** Extra files for /etc/pam.d: name to text. */
  readonly pam?: Readonly<Record<string, string>>;
  /** Extra files for /etc: path below /etc to text. */
  readonly etc?: Readonly<Record<string, string>>;
  /** One inetd service per name, each on its own port (IPv4 and IPv6). */
  readonly services: Readonly<Record<S, Service>>;
  /** false: no /dev/log at all. */
  readonly syslog?: boolean;
  /** RLIMIT_NOFILE for inetd and so for every server it starts (default: inherited). */
  readonly nofile?: number;
  /** libpam.so.0 reads as an empty file, so dlopen fails (the shadow fallback). */
  readonly hideLibpam?: boolean;
}

export interface World<S extends string> {
  readonly dir: string;
  readonly users: Readonly<Record<string, WorldUser>>;
  readonly ports: Readonly<Record<S, number>>;
  readonly inetdPid: number;
  /** A user the world made (throws for any other name). */
  user(name: string): WorldUser;
  /** argv for nsenter that runs argv inside the world's namespace (sees its users). */
  inside(argv: readonly string[]): string[];
  /** Run a command inside the world's namespace; its stdout. */
  nsenter(cmd: string, args: readonly string[]): Buffer;
  /** Every log line so far. */
  logs(): LogLine[];
  /** Forget the log lines so far: a test then looks only at its own. */
  clearLogs(): void;
  /** Wait until a log line matches, or fail after ms. */
  waitLog(re: RegExp, ms?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

const DAYS = Math.floor(Date.now() / 86_400_000);

export async function startWorld<S extends string>({
  users = [],
  pam,
  services,
  etc = {},
  syslog = true,
  nofile,
  hideLibpam = false,
}: WorldOptions<S>): Promise<World<S>> {
  const dir = mkdtempSync(join(tmpdir(), 'rexecd-world-'));
  chmodSync(dir, 0o755);
  const upper = join(dir, 'etc');
  mkdirSync(upper);
  mkdirSync(join(dir, 'etc-work'));
  mkdirSync(join(dir, 'home'));
  let passwd = readFileSync('/etc/passwd', 'utf8');
  let shadow = readFileSync('/etc/shadow', 'utf8');
  let group = readFileSync('/etc/group', 'utf8');
  const extraGroups = new Map<string, { gid: number; members: string[] }>();
  let nextUid = 4242;
  const made: Record<string, WorldUser> = {};
  for (const u of users) {
    const uid = u.uid ?? nextUid++;
    const gid = u.gid ?? uid;
    const home = u.home === null ? `/nonexistent-${u.name}` : (u.home ?? join(dir, 'home', u.name));
    if (u.home === undefined) {
      mkdirSync(home, { recursive: true });
      chownSync(home, u.homeOwner ?? uid, u.homeOwner ?? gid);
      chmodSync(home, u.homeMode ?? 0o755);
    }
    const hash = u.hash ?? mkpasswd(u.password, u.method ?? 'yescrypt');
    const s: ShadowAgeing = { lastChange: DAYS - 1, max: 99999, inactive: '', expire: '', ...u.shadow };
    passwd += `${u.name}:x:${uid}:${gid}:rexecd test:${home}:${u.shell ?? '/bin/sh'}\n`;
    shadow += `${u.name}:${hash}:${s.lastChange}:0:${s.max}:7:${s.inactive}:${s.expire}:\n`;
    if (!u.gid) group += `${u.name}:x:${gid}:\n`;
    for (const [g, ggid] of u.groups ?? []) {
      const entry = extraGroups.get(g) ?? { gid: ggid, members: [] };
      entry.members.push(u.name);
      extraGroups.set(g, entry);
    }
    made[u.name] = { ...u, uid, gid, home };
  }
  for (const [g, { gid, members }] of extraGroups) group += `${g}:x:${gid}:${members.join(',')}\n`;
  writeFileSync(join(upper, 'passwd'), passwd, { mode: 0o644 });
  writeFileSync(join(upper, 'group'), group, { mode: 0o644 });
  writeFileSync(join(upper, 'shadow'), shadow, { mode: 0o640 });
  chownSync(join(upper, 'shadow'), 0, shadowGid());
  if (pam) {
    mkdirSync(join(upper, 'pam.d'));
    for (const [name, text] of Object.entries(pam)) writeFileSync(join(upper, 'pam.d', name), text);
  }
  for (const [name, text] of Object.entries(etc)) {
    mkdirSync(dirname(join(upper, name)), { recursive: true });
    writeFileSync(join(upper, name), text);
  }

  let sink: SyslogSink | undefined;
  let mountLog = '';
  if (syslog) {
    mkdirSync(join(dir, 'dev'));
    mkdirSync(join(dir, 'dev-work'));
    writeFileSync(join(dir, 'dev', 'log'), '');
    sink = new SyslogSink(join(dir, 'log.sock'));
    chmodSync(join(dir, 'log.sock'), 0o666);
    mountLog = `mount -t overlay overlay -o lowerdir=/dev,upperdir=${dir}/dev,workdir=${dir}/dev-work /dev
mount --bind ${dir}/log.sock /dev/log`;
  }

  const ports: Record<string, number> = {};
  let conf = '';
  for (const [name, svc] of Object.entries<Service>(services)) {
    const port = await freePort();
    ports[name] = port;
    const { program, args, wait = false } = 'args' in svc ? svc : { program: undefined, args: svc };
    const argv = program ? [program, program.split('/').pop(), ...args] : [NODE, 'node', REXECD, ...args];
    for (const [addr, proto] of [['127.0.0.1', 'tcp4'], ['[::1]', 'tcp6']]) {
      conf += `${addr}:${port}\tstream\t${proto}\t${wait ? 'wait' : 'nowait.100000'}\troot\t${argv.join(' ')}\n`;
    }
  }
  writeFileSync(join(dir, 'inetd.conf'), conf);
  const hidePam = hideLibpam ? `mount --bind /dev/null "$(readlink -f /usr/lib/x86_64-linux-gnu/libpam.so.0)"` : '';
  const script = `set -e
mount -t overlay overlay -o lowerdir=/etc,upperdir=${upper},workdir=${dir}/etc-work /etc
${mountLog}
${hidePam}
cd /
${nofile ? `ulimit -n ${Number(nofile)}` : ''}
exec /usr/sbin/inetd -i -R 100000 ${dir}/inetd.conf`;
  const inetd = spawn('env', ['-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let inetdErr = '';
  inetd.stderr.on('data', (d: Buffer) => (inetdErr += d.toString()));
  await waitListening(Object.values(ports), inetd, () => inetdErr);
  const inetdPid = pidOf(inetd);

  const world: World<S> = {
    dir,
    users: made,
    ports: ports as Record<S, number>,
    inetdPid,
    user(name) {
      const u = made[name];
      if (!u) throw new Error(`the world has no user ${name}`);
      return u;
    },
    inside: (argv) => ['-m', '-t', String(inetdPid), '--', ...argv],
    nsenter: (cmd, args) => execFileSync('nsenter', world.inside([cmd, ...args])),
    logs: () => (sink ? sink.drain() : []),
    clearLogs() {
      world.logs().length = 0;
    },
    waitLog: (re, ms = 5000) =>
      waitFor(
        () => world.logs().find((l) => re.test(l.text)),
        () => `no log line matches ${re}; have:\n${world.logs().map((l) => l.text).join('\n')}`,
        ms,
      ),
    async stop() {
      // What inetd started and left running (a "wait" service's listener waits for
      // its idle exit, sessions): stopped with it, so nothing outlives the world.
      const leftOver = childPids(pidOf(inetd));
      inetd.kill('SIGTERM');
      await exited(inetd);
      for (const pid of leftOver) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone meanwhile
        }
      }
      sink?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

function shadowGid(): number {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('shadow:'));
  return line ? Number(line.split(':')[2]) : 0;
}

async function waitListening(ports: readonly number[], child: ChildProcess, err: () => string): Promise<void> {
  const end = Date.now() + 10000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inetd exited: ${err()}`);
    const listening = execFileSync('ss', ['-ltnH']).toString();
    if (ports.every((p) => listening.includes(`127.0.0.1:${p} `) && listening.includes(`[::1]:${p} `))) return;
    if (Date.now() > end) throw new Error(`inetd did not listen on ${ports.join(', ')}: ${err()}`);
    await sleep(30);
  }
}
