// fail2ban for single-shot mode: the shipped filter and jail (etc/fail2ban/), checked
// by Debian's own tools (fail2ban-regex, fail2ban-client -d) against log lines that
// rexecd really wrote.  No fail2ban server is started.
//
// rexecd runs under the world's openbsd-inetd (IPv4 and IPv6 peers), under
// systemd-socket-activate on [::ffff:127.0.0.1] (IPv4 clients arrive IPv4-mapped,
// as on a systemd ListenStream=512 socket) and as --listen, with --auth shadow and
// --auth pam.  Each connection does one thing (logs in, guesses wrong, sends a
// hostile user name or a bad request, goes silent, closes) and the test knows the
// lines that must come of it and which of them fail2ban must match, with which
// address.  The datagrams become /var/log/auth.log and /var/log/syslog as Debian's
// rsyslog writes them (authpriv.* to one, the rest to the other), in rsyslog's
// traditional format and in Debian 12's default (RFC 3339 time stamps), and
// fail2ban-regex must match exactly the expected lines.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWorld, SHIPPED_PAM_SERVICE, type World } from '../harness/world';
import { ROOT } from '../harness/paths';
import { raw, request, type RawResult, type RequestFields, type Step } from '../harness/clients';
import { socketActivate, startListener, type Launched } from '../harness/launchers';
import { closedPort, deafListener, type HeldPort, type Loopback } from '../harness/sockets';
import { faultModulePath } from '../harness/pam-fault';
import { FACILITY, type LogLine as Datagram } from '../harness/syslog-sink';
import { sleep, waitFor } from '../harness/wait';

const SHIPPED = join(ROOT, 'etc', 'fail2ban');
/** Long enough for the hostile names below (the default is 16 bytes). */
const MAX_NAME = 256;
/** --timeout of the services that the timeout events use. */
const SHORT_TIMEOUT = 0.5;
const LISTEN_TIMEOUT = 1.5;
const COMMON = ['-l', '--max-name', String(MAX_NAME)];
const FAST = ['--fail-delay', '0.2'];
// On the short services the one refusal is an authentication that outlasts the
// deadline, answered at the fail delay; rexecd's SIGALRM backstop (deadline + fail
// delay + 5 s), which ends a process without a log line, stays far beyond it.
const SHORT = ['--timeout', String(SHORT_TIMEOUT), '--fail-delay', '1'];
const SERVICES: Readonly<Record<'shadow' | 'pam' | 'shadow-short' | 'pam-short', readonly string[]>> = {
  shadow: ['--auth', 'shadow', ...COMMON, ...FAST],
  pam: ['--auth', 'pam', ...COMMON, ...FAST],
  'shadow-short': ['--auth', 'shadow', ...COMMON, ...SHORT],
  // pam_rexecd_fault sleeps past the deadline, then says yes.
  'pam-short': ['--auth', 'pam', '--pam-service', 'rexec-slow', ...COMMON, ...SHORT],
};
const LISTEN_ARGS = ['--auth', 'shadow', ...COMMON, ...FAST, '--timeout', String(LISTEN_TIMEOUT), '--max-connections', '2'];

/**
 * User names a client may choose to get another address banned, or its own line
 * left unmatched, and the quoted form rexecd logs for each.
 */
const HOSTILE_NAMES = [
  ['a from 10.9.8.7', '"a from 10.9.8.7"'],
  ['x" from 10.9.8.7: bad password', '"x\\x22 from 10.9.8.7: bad password"'],
  ['\\" from 2001:db8::7', '"\\x5c\\x22 from 2001:db8::7"'],
  ['y\nMay 20 12:00:00 h rexecd[1]: refused user "z" from 10.9.8.7: x\u2028\u0085', '"y\\x0aMay 20 12:00:00 h rexecd[1]: refused user \\x22z\\x22 from 10.9.8.7: x\u2028\u0085"'],
] as const satisfies readonly (readonly [sent: string, logged: string])[];
/** The addresses the hostile names name: never captured. */
const FOREIGN = ['10.9.8.7', '2001:db8::7'];

type Auth = 'shadow' | 'pam';
type Peer = 'IPv4' | 'IPv6' | 'IPv4-mapped' | 'listener';

/** Where a client connects, and the address rexecd logs for it (and fail2ban bans). */
interface Endpoint {
  readonly label: string;
  readonly auth: Auth;
  /** A service with a short --timeout. */
  readonly short: boolean;
  readonly peer: Peer;
  readonly host: Loopback;
  readonly port: number;
  readonly ip: string;
  /** A port on the client's address that refuses connections, and one whose connects hang. */
  readonly closed: number;
  readonly deaf: number;
}
/** One line a connection must (or, optional, may) make rexecd write; ban: fail2ban must match it. */
interface Expected {
  readonly re: RegExp;
  readonly ban: boolean;
  readonly optional: boolean;
}
/** The client's side of a connection: its local port (which rexecd -l logs), how long it lasted, how it ended. */
interface ClientSide {
  readonly port: number | undefined;
  readonly ms: number;
  readonly closed: string;
}
/** One thing a client does: run() makes the connections and returns those that rexecd -l logs; expect() the lines besides their "connection from". */
interface ClientEvent {
  readonly name: string;
  run(ep: Endpoint): Promise<ClientSide[]>;
  expect(ep: Endpoint, address: string): Expected[];
}
/** A syslog(3) datagram taken apart. */
interface LogLine {
  readonly stamp: string;
  readonly ident: string;
  readonly pid: number;
  readonly message: string;
  readonly entry: Datagram;
}
/** What one event wrote. */
interface Outcome {
  readonly ep: Endpoint;
  readonly event: ClientEvent;
  readonly clients: ClientSide[];
  lines(): LogLine[];
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const line = (source: string, ban: boolean, optional = false): Expected => ({ re: new RegExp(`^${source}$`, 's'), ban, optional });

const REASON: Readonly<Record<Auth, { wrong: string; unknown: string }>> = {
  shadow: { wrong: 'bad password', unknown: 'unknown user' },
  pam: { wrong: 'PAM: authentication: Authentication failure', unknown: 'PAM: authentication: .+' },
};
/** What PAM modules log under rexecd's ident: theirs, not rexecd's, never matched. */
const PAM_MODULE_LINE = line('pam_\\w+\\(rexec(?:-slow)?:\\w+\\): .*', false, true);

const clientSide = (r: RawResult): ClientSide => ({ port: r.localPort, ms: Math.round(r.ms), closed: r.mainClosed });
/** One connection with these steps. */
async function connectOnce(ep: Endpoint, steps: readonly Step[]): Promise<ClientSide[]> {
  return [clientSide(await raw({ port: ep.port, host: ep.host, steps, timeout: 15000 }))];
}
const oneConnection = (name: string, steps: (ep: Endpoint) => readonly Step[], expect: ClientEvent['expect']): ClientEvent => ({ name, run: (ep) => connectOnce(ep, steps(ep)), expect });
const login = (fields: Omit<RequestFields, 'command'> & { command?: string }): Step[] => [request({ command: 'true', ...fields })];

const REQUEST_EVENTS: ClientEvent[] = [
  oneConnection('a login', () => login({ user: 'rxtest', password: 'rxpass' }), (ep, a) => [line(`user rxtest from ${a}`, false)]),
  oneConnection('a wrong password', () => login({ user: 'rxtest', password: 'wrong' }), (ep, a) => [line(`refused user "rxtest" from ${a}: ${REASON[ep.auth].wrong}`, true)]),
  oneConnection('an unknown user', () => login({ user: 'nosuchuser', password: 'x' }), (ep, a) => [line(`refused user "nosuchuser" from ${a}: ${REASON[ep.auth].unknown}`, true)]),
  ...HOSTILE_NAMES.map(([sent, logged]) =>
    oneConnection(`the user name ${JSON.stringify(sent)}`, () => login({ user: sent, password: 'x' }), (ep, a) => [line(`refused user ${escapeRe(logged)} from ${a}: ${REASON[ep.auth].unknown}`, true)]),
  ),
  oneConnection('a user name over --max-name', () => [Buffer.from(`\0${'u'.repeat(MAX_NAME + 1)}`)], (ep, a) => [line(`username too long from ${a}`, true)]),
  oneConnection('a password over 16 bytes', () => login({ user: 'rxtest', password: 'p'.repeat(17) }), (ep, a) => [line(`password too long from ${a}`, true)]),
  oneConnection('a command over MAX_ARG_STRLEN', () => login({ user: 'rxtest', password: 'rxpass', command: 'c'.repeat(131072) }), (ep, a) => [line(`command too long from ${a}`, true)]),
  oneConnection('a stderr port that is not a number', () => login({ port: 'abc', user: 'rxtest', password: 'rxpass' }), (ep, a) => [line(`bad stderr port from ${a}: not a decimal number`, true)]),
  oneConnection('a stderr port below 1024', () => login({ port: '80', user: 'rxtest', password: 'rxpass' }), (ep, a) => [line(`bad stderr port from ${a}: port 80 is reserved \\(below 1024\\)`, true)]),
  oneConnection('a stderr port where nothing listens', (ep) => login({ port: String(ep.closed), user: 'rxtest', password: 'rxpass' }), (ep, a) => [line(`can't connect to stderr port ${a} port ${ep.closed}: connect: Connection refused`, false)]),
  oneConnection('a client that closes during the password', () => [Buffer.from('\0rxtest\0rx'), { delay: 50 }, { end: true }], (ep, a) => [line(`client closed the connection during password from ${a}`, false)]),
];

/** The deadline events, on the services with a short --timeout. */
const deadlineEvents = (seconds: number, stderrTimeout: (t: string, ep: Endpoint, a: string) => Expected): ClientEvent[] => {
  const t = `timeout \\(${escapeRe(String(seconds))} s\\)`;
  return [
    oneConnection('a client that sends nothing', () => [], (ep, a) => [line(`${t} waiting for port from ${a}`, true)]),
    oneConnection('a client that stops after the port', () => [Buffer.from('0\0')], (ep, a) => [line(`${t} waiting for user from ${a}`, true)]),
    oneConnection('a stderr port that never answers', (ep) => login({ port: String(ep.deaf), user: 'rxtest', password: 'rxpass' }), (ep, a) => [stderrTimeout(t, ep, a)]),
  ];
};
const SINGLE_SHOT_DEADLINE_EVENTS: ClientEvent[] = [
  ...deadlineEvents(SHORT_TIMEOUT, (t, ep, a) => line(`${t} waiting for the stderr connection from ${a}`, true)),
  oneConnection(
    'an authentication that outlasts the deadline',
    (ep) => login(ep.auth === 'shadow' ? { user: 'rxslow', password: 'rxpass' } : { user: 'rxtest', password: 'anything' }),
    (ep, a) => [line(`timeout \\(${SHORT_TIMEOUT} s\\) during authentication of user "${ep.auth === 'shadow' ? 'rxslow' : 'rxtest'}" from ${a}`, true)],
  ),
];

const OVER_MAX_CONNECTIONS: ClientEvent = {
  name: 'a third connection while two are held (--max-connections 2)',
  async run(ep) {
    const mark = w.logs().length;
    const holders = [0, 1].map(() => raw({ port: ep.port, host: ep.host, steps: [], timeout: 15000 }));
    await waitFor(() => logLines(mark).filter((l) => l.message.startsWith(`connection from ${ep.ip} port `)).length === 2, 'the two held connections were not logged');
    const third = await raw({ port: ep.port, host: ep.host, steps: [] });
    assert.equal(third.main.toString('latin1'), '\x01Try again.\n');
    return (await Promise.all(holders)).map(clientSide);
  },
  expect: (ep, a) => [
    line(`refused ${a}: 2 connections already \\(--max-connections\\)`, false),
    line(`timeout \\(${LISTEN_TIMEOUT} s\\) waiting for port from ${a}`, true),
    line(`timeout \\(${LISTEN_TIMEOUT} s\\) waiting for port from ${a}`, true),
  ],
};
/** The listener reads requests itself: the same events, its own texts for the deadline. */
const LISTENER_REQUEST_EVENTS = [
  'a login',
  'a wrong password',
  `the user name ${JSON.stringify(HOSTILE_NAMES[1][0])}`,
  'a user name over --max-name',
  'a stderr port that is not a number',
  'a stderr port below 1024',
  'a stderr port where nothing listens',
  'a client that closes during the password',
];
const LISTENER_EVENTS: ClientEvent[] = [
  // First: no session of an earlier event may still count against the limit.
  OVER_MAX_CONNECTIONS,
  ...REQUEST_EVENTS.filter((e) => LISTENER_REQUEST_EVENTS.includes(e.name)),
  ...deadlineEvents(LISTEN_TIMEOUT, (t, ep, a) => line(`${t} waiting for the stderr connection from ${a}`, true)),
];

let w: World<keyof typeof SERVICES>;
let listener: Launched | undefined;
const launchers: Launched[] = [];
/** Per loopback address: a port that refuses connections, one whose connects hang. */
const peerPorts: Partial<Record<Loopback, { closed: number; deaf: number }>> = {};
const peerSockets: HeldPort[] = [];
const outcomes: Outcome[] = [];
let logDir: string;
let configDir: string;
const endpoints: Endpoint[] = [];

function parseLine(entry: Datagram): LogLine {
  // glibc's syslog(3): "Mmm dd hh:mm:ss ident[pid]: message"
  const [, stamp, ident, pid, message] = /^(\w{3} [ \d]\d \d\d:\d\d:\d\d) ([^\s[]+)\[(\d+)\]: (.*)$/s.exec(entry.text) ?? [];
  if (stamp === undefined || ident === undefined || message === undefined) throw new Error(`not a syslog(3) datagram: ${JSON.stringify(entry.text)}`);
  return { stamp, ident, pid: Number(pid), message, entry };
}
/** Every datagram so far, parsed once. */
const parsed: LogLine[] = [];
function allLines(): LogLine[] {
  const logs = w.logs();
  for (const entry of logs.slice(parsed.length)) parsed.push(parseLine(entry));
  return parsed;
}
/** rexecd's lines (and those of PAM modules in it) received from index `from` to `to`. */
const logLines = (from = 0, to = Infinity) => allLines().slice(from, to).filter((l) => l.ident === 'rexecd');

/** The ports on the client's address that refuse and that hang. */
function peerPortsOf(host: Loopback): { closed: number; deaf: number } {
  const ports = peerPorts[host];
  if (!ports) throw new Error(`no peer ports on ${host}`);
  return ports;
}

/** What an outcome's lines lack, as "label, event: missing [...], have [...]", or ''. */
function shortfall(o: Outcome): string {
  const { missing } = account(o.lines(), expectedLines(o));
  return missing.length ? `${o.ep.label}, ${o.event.name}: missing ${missing.join(', ')}; have ${JSON.stringify(o.lines().map((l) => l.message))}; client ${JSON.stringify(o.clients)}` : '';
}

/** Pairs each line with the expectation it meets; what is missing or unexpected. */
function account(lines: readonly LogLine[], expected: readonly Expected[]): { pairs: { line: LogLine; expected: Expected }[]; missing: string[]; unexpected: string[] } {
  const used = new Set<number>();
  const pairs: { line: LogLine; expected: Expected }[] = [];
  const unexpected: string[] = [];
  for (const l of lines) {
    let i = expected.findIndex((e, k) => !e.optional && !used.has(k) && e.re.test(l.message));
    if (i < 0) i = expected.findIndex((e) => e.optional && e.re.test(l.message));
    const e = expected[i];
    if (e === undefined) {
      unexpected.push(l.message);
      continue;
    }
    if (!e.optional) used.add(i);
    pairs.push({ line: l, expected: e });
  }
  const missing = expected.filter((e, k) => !e.optional && !used.has(k)).map((e) => String(e.re));
  return { pairs, missing, unexpected };
}

/** Everything an outcome's lines must be: its events' lines, and a "connection from" per port. */
function expectedLines(o: Pick<Outcome, 'ep' | 'event' | 'clients'>): Expected[] {
  const a = escapeRe(o.ep.ip);
  const connections = o.clients.map((c) => line(`connection from ${a} port ${c.port}`, false));
  return [...connections, ...o.event.expect(o.ep, a), ...(o.ep.auth === 'pam' ? [PAM_MODULE_LINE] : [])];
}

/**
 * Single-shot: one process per connection, so a connection's lines are its pid's,
 * found by the "connection from ADDR port P" it logged (P: the client's port).  One
 * connection at a time per client address keeps that line unambiguous.
 */
async function runSingleShot(ep: Endpoint, event: ClientEvent): Promise<void> {
  const mark = w.logs().length;
  const clients = await event.run(ep);
  const port = clients[0]?.port;
  const first = await waitFor(
    () => logLines(mark).find((l) => l.message === `connection from ${ep.ip} port ${port}`),
    `${ep.label}, ${event.name}: rexecd logged no "connection from ${ep.ip} port ${port}"`,
  );
  const lines = () => {
    // Up to where the pid, if reused, starts another connection.
    const mine = logLines(mark).filter((l) => l.pid === first.pid);
    const start = mine.indexOf(first);
    const next = mine.findIndex((l, i) => i > start && l.message.startsWith('connection from '));
    return mine.slice(start, next < 0 ? undefined : next);
  };
  outcomes.push({ ep, event, clients, lines });
}

/**
 * --listen: one listener process logs for every connection, so an event's lines are
 * those that arrive while it runs, until all it must write is there.
 */
async function runInWindow(ep: Endpoint, event: ClientEvent): Promise<void> {
  const mark = w.logs().length;
  const running: Outcome = { ep, event, clients: await event.run(ep), lines: () => logLines(mark) };
  await waitFor(() => !shortfall(running), () => shortfall(running));
  // The next event starts where this one's lines end.
  const end = allLines().length;
  outcomes.push({ ...running, lines: () => logLines(mark, end) });
}

before(async () => {
  const slowHash = execFileSync('mkpasswd', ['-m', 'sha512crypt', '-R', '2000000', '-s'], { input: 'rxpass' }).toString().trim();
  w = await startWorld({
    users: [
      { name: 'rxtest', password: 'rxpass' },
      // Checking this hash takes longer than SHORT_TIMEOUT.
      { name: 'rxslow', password: 'rxpass', hash: slowHash },
    ],
    pam: {
      rexec: SHIPPED_PAM_SERVICE,
      'rexec-slow': `auth required ${faultModulePath()} sleep=${SHORT_TIMEOUT * 2000}\naccount required pam_permit.so\n`,
    },
    services: SERVICES,
  });
  for (const host of ['127.0.0.1', '::1'] as const) {
    const closed = closedPort({ host });
    const deaf = await deafListener({ fill: true, host });
    peerSockets.push(closed, deaf);
    peerPorts[host] = { closed: closed.port, deaf: deaf.port };
  }

  for (const service of Object.keys(SERVICES) as (keyof typeof SERVICES)[]) {
    const common = { auth: service.startsWith('pam') ? 'pam' : 'shadow', short: service.endsWith('-short') } as const;
    endpoints.push({ ...common, peer: 'IPv4', label: `${service}, IPv4`, host: '127.0.0.1', port: w.ports[service], ip: '127.0.0.1', ...peerPortsOf('127.0.0.1') });
    endpoints.push({ ...common, peer: 'IPv6', label: `${service}, IPv6`, host: '::1', port: w.ports[service], ip: '::1', ...peerPortsOf('::1') });
    const mapped = await socketActivate(w, { inetd: true, host: '::ffff:127.0.0.1', args: SERVICES[service] });
    launchers.push(mapped);
    // rexecd logs an IPv4-mapped peer in its IPv4 form.
    endpoints.push({ ...common, peer: 'IPv4-mapped', label: `${service}, IPv4-mapped`, host: '127.0.0.1', port: mapped.port, ip: '127.0.0.1', ...peerPortsOf('127.0.0.1') });
  }
  // One lane per client address, run side by side.
  await Promise.all(
    (['127.0.0.1', '::1'] as const).map(async (ip) => {
      for (const ep of endpoints.filter((e) => e.ip === ip)) {
        for (const event of ep.short ? SINGLE_SHOT_DEADLINE_EVENTS : REQUEST_EVENTS) await runSingleShot(ep, event);
      }
    }),
  );

  const { port } = (listener = await startListener(w, { args: LISTEN_ARGS }));
  for (const host of ['127.0.0.1', '::1'] as const) {
    const ep: Endpoint = { label: `--listen, ${host}`, auth: 'shadow', short: false, peer: 'listener', host, port, ip: host, ...peerPortsOf(host) };
    for (const event of LISTENER_EVENTS) await runInWindow(ep, event);
  }

  await waitFor(() => outcomes.every((o) => !shortfall(o)), () => outcomes.map(shortfall).filter(Boolean).join('\n'));
  await sleep(300); // a line nobody expects would arrive by now

  logDir = mkdtempSync(join(tmpdir(), 'rexecd-f2b-'));
  configDir = assembleConfig(join(logDir, 'config'));
});

after(async () => {
  await listener?.proc.stop();
  for (const l of launchers) await l.proc.stop();
  for (const s of peerSockets) s.close();
  await w?.stop();
  if (logDir) rmSync(logDir, { recursive: true, force: true });
});

/** Debian's /etc/fail2ban with the shipped filter and jail added, as an administrator installs them. */
function assembleConfig(dir: string): string {
  cpSync('/etc/fail2ban', dir, { recursive: true });
  copyFileSync(join(SHIPPED, 'filter.d', 'rexecd.conf'), join(dir, 'filter.d', 'rexecd.conf'));
  copyFileSync(join(SHIPPED, 'jail.d', 'rexecd.conf'), join(dir, 'jail.d', 'rexecd.conf'));
  return dir;
}

test('each connection made rexecd write exactly the lines expected of it', () => {
  const problems: string[] = [];
  for (const o of outcomes) {
    const { missing, unexpected } = account(o.lines(), expectedLines(o));
    if (missing.length || unexpected.length) problems.push(`${o.ep.label}, ${o.event.name}: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(unexpected)}`);
  }
  assert.deepEqual(problems, []);
  assert.equal(outcomes.length, 6 * REQUEST_EVENTS.length + 6 * SINGLE_SHOT_DEADLINE_EVENTS.length + 2 * LISTENER_EVENTS.length);
});

test('an IPv4-mapped peer: rexecd serves an IPv6 socket and logs the peer as 127.0.0.1', async () => {
  // The shell's fd 0 is the connection: which of the kernel's tables holds its inode.
  const command = 'ino=$(stat -L -c %i /proc/$$/fd/0); for t in tcp tcp6; do grep -q " $ino " /proc/net/$t && echo $t; done; echo $RHOST';
  const table: Partial<Record<Peer, string>> = { IPv4: 'tcp', IPv6: 'tcp6', 'IPv4-mapped': 'tcp6' };
  for (const ep of endpoints.filter((e) => e.auth === 'shadow' && !e.short)) {
    const r = await raw({ port: ep.port, host: ep.host, steps: login({ user: 'rxtest', password: 'rxpass', command }) });
    assert.equal(r.main.toString('latin1'), `\0${table[ep.peer] ?? assert.fail(`no table for ${ep.peer}`)}\n${ep.ip}\n`, ep.label);
  }
});

// ---- the log files, as rsyslog writes them --------------------------------------

type Format = 'traditional' | 'rfc3339';
const FORMATS: Readonly<Record<Format, (l: LogLine) => string>> = {
  // $ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat: the message's own time stamp
  traditional: (l) => l.stamp,
  // Debian 12's rsyslog.conf sets no template: RSYSLOG_FileFormat, the time received
  rfc3339: (l) => rfc3339(l.entry.received),
};
const HOST = hostname().split('.')[0];

function rfc3339(d: Date): string {
  const p = (n: number, width = 2) => String(n).padStart(width, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off < 0 ? '-' : '+'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000${zone}`;
}

/** One datagram as rsyslog writes it to a file: control bytes as #ooo, as rsyslog escapes them. */
function rsyslogLine(l: LogLine, format: Format): string {
  const message = l.message.replace(/[\x00-\x1f\x7f]/g, (c) => `#${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return `${FORMATS[format](l)} ${HOST} ${l.ident}[${l.pid}]: ${message}`;
}

const LOG_AUTH = 4;
/** rsyslog on Debian: auth.* and authpriv.* to auth.log, everything else to syslog. */
const fileOf = (l: LogLine): LogFile => (l.entry.facility === FACILITY.authpriv || l.entry.facility === LOG_AUTH ? 'auth.log' : 'syslog');

type LogFile = 'auth.log' | 'syslog';
/** A log file written, its number of lines, and the matches expected in it ("ip\tline"), sorted. */
interface Written {
  readonly path: string;
  readonly count: number;
  readonly expected: string[];
}

/** Writes the two files of a format. */
function writeLogs(format: Format): Record<LogFile, Written> {
  const all = allLines();
  const expectedIp = new Map<Datagram, string>();
  for (const o of outcomes) {
    for (const { line: l, expected } of account(o.lines(), expectedLines(o)).pairs) if (expected.ban) expectedIp.set(l.entry, o.ep.ip);
  }
  const write = (name: LogFile): Written => {
    const lines = all.filter((l) => fileOf(l) === name);
    const path = join(logDir, `${format}-${name}`);
    writeFileSync(path, lines.map((l) => rsyslogLine(l, format) + '\n').join(''));
    const expected = lines.filter((l) => expectedIp.has(l.entry)).map((l) => `${expectedIp.get(l.entry)}\t${rsyslogLine(l, format)}`);
    return { path, count: lines.length, expected: expected.sort() };
  };
  return { 'auth.log': write('auth.log'), syslog: write('syslog') };
}

/** fail2ban-regex, Debian's: each match as "ip\tline", and its own count of lines. */
function fail2banRegex(path: string, filter: string): { matches: string[]; total: number; ignored: number; matched: number; missed: number } {
  const run = (args: readonly string[]): string => {
    const r = spawnSync('fail2ban-regex', ['-e', 'UTF-8', ...args, path, filter], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
    assert.equal(r.status, 0, `fail2ban-regex ${args.join(' ')} ${path}: ${r.stderr}`);
    return r.stdout;
  };
  const matches = run(['-o', '<ip>\t<msg>']).split('\n').filter(Boolean).sort();
  const summary = /^Lines: (\d+) lines, (\d+) ignored, (\d+) matched, (\d+) missed/m.exec(run([]));
  assert.ok(summary, 'fail2ban-regex printed no "Lines:" summary');
  return { matches, total: Number(summary[1]), ignored: Number(summary[2]), matched: Number(summary[3]), missed: Number(summary[4]) };
}

const FILTER_VARIANTS: [format: Format, label: string, options: string][] = [
  ['traditional', 'rsyslog traditional format', ''],
  ['rfc3339', "Debian 12's rsyslog format (RFC 3339 time stamps)", ''],
  // fail2ban's systemd backend formats a journal entry as "HOST IDENT[PID]: MESSAGE"
  // and reads it with the filter's journal prefix (logtype=journal).
  ['traditional', "the journal backend's prefix (logtype=journal)", '[logtype=journal]'],
];
for (const [format, label, options] of FILTER_VARIANTS) {
  test(`fail2ban-regex, ${label}: exactly the refusals, bad requests and timeouts, each with the client's address`, () => {
    const files = writeLogs(format);
    for (const [name, f] of Object.entries(files)) {
      assert.ok(f.expected.length > 0, `${name}: nothing to match`);
      const r = fail2banRegex(f.path, join(configDir, 'filter.d', `rexecd.conf${options}`));
      assert.deepEqual(r.matches, f.expected, `${name}: matched lines and captured addresses`);
      assert.deepEqual([r.total, r.ignored, r.matched, r.missed], [f.count, 0, f.expected.length, f.count - f.expected.length], `${name}: fail2ban-regex's own count`);
      for (const m of r.matches) assert.ok(!FOREIGN.some((ip) => m.startsWith(`${ip}\t`)), `a hostile user name got its address captured: ${m}`);
    }
  });
}

test('every hostile user name is refused, matched and blamed on its own sender', () => {
  const files = writeLogs('traditional');
  const hostile = outcomes.filter((o) => o.event.name.startsWith('the user name '));
  assert.equal(hostile.length, 6 * HOSTILE_NAMES.length + 2);
  for (const o of hostile) {
    const refused = account(o.lines(), expectedLines(o)).pairs.find((p) => p.expected.ban);
    assert.ok(refused, `${o.ep.label}, ${o.event.name}: no refusal`);
    assert.ok(files['auth.log'].expected.includes(`${o.ep.ip}\t${rsyslogLine(refused.line, 'traditional')}`));
  }
});

// ---- the jail ---------------------------------------------------------------------

/** fail2ban-client -d: the commands a server would be given, one per line; no server is involved. */
function dump(dir: string): string[] {
  const r = spawnSync('fail2ban-client', ['-c', dir, '-d'], { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  assert.equal(r.status, 0, `fail2ban-client -d: ${r.stderr}`);
  return r.stdout.split('\n');
}

function configWith(name: string, files: Readonly<Record<string, string>>): string {
  const dir = assembleConfig(join(logDir, name));
  for (const [path, text] of Object.entries(files)) writeFileSync(join(dir, path), text);
  return dir;
}

test('the jail is off as shipped', () => {
  const lines = dump(configDir);
  assert.ok(lines.includes("['set', 'loglevel', 'INFO']"), `not a fail2ban dump:\n${lines.join('\n')}`);
  assert.deepEqual(lines.filter((l) => l.includes("'rexecd'")), []);
});

test('enabled in jail.d/rexecd.local: port exec, 5 failures in 10 minutes ban for an hour, auth.log through the filter', () => {
  const authLog = writeLogs('traditional')['auth.log'].path;
  const dir = configWith('enabled', {
    'jail.d/rexecd.local': '[rexecd]\nenabled = true\n',
    // Debian's paths, pointed at the test's auth.log (/var/log/syslog is named as such).
    'paths-overrides.local': `[DEFAULT]\nsyslog_authpriv = ${authLog}\n`,
  });
  const lines = dump(dir);
  for (const want of [
    "['add', 'rexecd', 'auto']",
    "['set', 'rexecd', 'maxretry', 5]",
    "['set', 'rexecd', 'findtime', '10m']",
    "['set', 'rexecd', 'bantime', '1h']",
    `['set', 'rexecd', 'addlogpath', '${authLog}', 'head']`,
    "['set', 'rexecd', 'addjournalmatch', 'SYSLOG_IDENTIFIER=rexecd']",
    "['start', 'rexecd']",
  ]) {
    assert.ok(lines.includes(want), `no ${want} in:\n${lines.filter((l) => l.includes("'rexecd'")).join('\n')}`);
  }
  const regexes = lines.find((l) => l.startsWith("['multi-set', 'rexecd', 'addfailregex', "));
  assert.ok(regexes?.includes('^refused user "[^"]*" from <ADDR>: .+$'), 'the jail does not use the shipped filter');
  const action = lines.find((l) => l.startsWith("['multi-set', 'rexecd', 'action', "));
  assert.ok(action?.includes("['port', 'exec']"), 'the ban action is not for port exec');
});

test('with journald alone: backend = systemd reads the journal with the filter\'s journalmatch', () => {
  const dir = configWith('journal', { 'jail.d/rexecd.local': '[rexecd]\nenabled = true\nbackend = systemd\n' });
  const lines = dump(dir);
  assert.ok(lines.includes("['add', 'rexecd', 'systemd']"));
  assert.ok(lines.includes("['set', 'rexecd', 'addjournalmatch', 'SYSLOG_IDENTIFIER=rexecd']"));
  assert.ok(!lines.some((l) => l.startsWith("['set', 'rexecd', 'addlogpath'")), 'a journal jail reads no file');
});
