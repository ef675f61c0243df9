// A private world for one test file: test users that exist only inside a private
// mount namespace (an overlay over /etc carries the crafted passwd, shadow, group,
// PAM files and nologin; the host's files are never touched), a private syslog
// socket, and a real openbsd-inetd serving rexecd on loopback ports.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SyslogSink } from './syslog-sink.mjs';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
// The bundle (scripts/bundle.mjs): what inetd and systemd run in production.
export const REXECD = join(ROOT, 'dist', 'rexecd.cjs');
export const NODE = process.env.REXECD_TEST_NODE || process.execPath;

const hashCache = new Map();
/** A password hash made by mkpasswd (Debian package whois). */
export function mkpasswd(password, method = 'yescrypt') {
  const key = `${method}\0${password}`;
  if (!hashCache.has(key)) {
    hashCache.set(key, execFileSync('mkpasswd', ['-m', method, '-s'], { input: password }).toString().trim());
  }
  return hashCache.get(key);
}

/** Two loopback ports free on 127.0.0.1 and ::1 alike. */
export async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    const ok = await Promise.all(['127.0.0.1', '::1'].map((host) => new Promise((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen({ host, port, exclusive: true }, () => s.close(() => res(true)));
    })));
    if (ok.every(Boolean)) return port;
  }
}

const DAYS = Math.floor(Date.now() / 86_400_000);

/**
 * users: [{ name, password, method='yescrypt', hash (overrides), uid, home (null =
 * none), shell='/bin/sh', groups: [[name, gid]], shadow: {lastChange, max, inactive, expire} }]
 * pam: { rexec: 'file text', ... } extra files for /etc/pam.d
 * services: { name: [rexecd args] } or { name: { program, args, wait } } (wait: inetd hands
 *   over the listening socket, one server per address family, instead of each connection)
 * nofile: RLIMIT_NOFILE for inetd and so for every server it starts (default: inherited)
 */
export async function startWorld({ users = [], pam, services = { rexecd: [] }, etc = {}, syslog = true, nofile, hideLibpam = false } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'rexecd-world-'));
  chmodSync(dir, 0o755);
  const upper = join(dir, 'etc');
  mkdirSync(upper);
  mkdirSync(join(dir, 'etc-work'));
  mkdirSync(join(dir, 'home'));
  let passwd = readFileSync('/etc/passwd', 'utf8');
  let shadow = readFileSync('/etc/shadow', 'utf8');
  let group = readFileSync('/etc/group', 'utf8');
  const extraGroups = new Map();
  let nextUid = 4242;
  const made = {};
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
    const s = { lastChange: DAYS - 1, max: 99999, inactive: '', expire: '', ...u.shadow };
    passwd += `${u.name}:x:${uid}:${gid}:rexecd test:${home}:${u.shell ?? '/bin/sh'}\n`;
    shadow += `${u.name}:${hash}:${s.lastChange}:0:${s.max}:7:${s.inactive}:${s.expire}:\n`;
    if (!u.gid) group += `${u.name}:x:${gid}:\n`;
    for (const [g, ggid] of u.groups ?? []) {
      if (!extraGroups.has(g)) extraGroups.set(g, { gid: ggid, members: [] });
      extraGroups.get(g).members.push(u.name);
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

  let sink;
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

  const ports = {};
  let conf = '';
  for (const [name, svc] of Object.entries(services)) {
    const port = await freePort();
    ports[name] = port;
    const { program, args, wait = false } = Array.isArray(svc) ? { program: null, args: svc } : svc;
    const argv = program ? [program, program.split('/').pop(), ...args] : [NODE, 'node', REXECD, ...args];
    for (const [addr, proto] of [['127.0.0.1', 'tcp4'], ['[::1]', 'tcp6']]) {
      conf += `${addr}:${port}\tstream\t${proto}\t${wait ? 'wait' : 'nowait.100000'}\troot\t${argv.join(' ')}\n`;
    }
  }
  writeFileSync(join(dir, 'inetd.conf'), conf);
  // hideLibpam: libpam.so.0 reads as an empty file, so dlopen fails (the shadow fallback).
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
  inetd.stderr.on('data', (d) => (inetdErr += d));
  await waitListening(Object.values(ports), inetd, () => inetdErr);

  const world = {
    dir,
    users: made,
    ports,
    port: Object.values(ports)[0],
    inetdPid: inetd.pid,
    /** Run a command inside the world's namespace (sees its users). */
    nsenter(cmd, args, opts = {}) {
      return execFileSync('nsenter', ['-m', '-t', String(inetd.pid), '--', cmd, ...args], opts);
    },
    logs() {
      return sink ? sink.drain() : [];
    },
    /** Wait until a log line matches, or fail after ms. */
    async waitLog(re, ms = 5000) {
      const end = Date.now() + ms;
      for (;;) {
        const line = world.logs().find((l) => re.test(l.text));
        if (line) return line;
        if (Date.now() > end) throw new Error(`no log line matches ${re}; have:\n${world.logs().map((l) => l.text).join('\n')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async stop() {
      inetd.kill('SIGTERM');
      await new Promise((r) => (inetd.exitCode !== null ? r() : inetd.once('exit', r)));
      sink?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

function shadowGid() {
  const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('shadow:'));
  return line ? Number(line.split(':')[2]) : 0;
}

async function waitListening(ports, child, err) {
  const end = Date.now() + 10000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`inetd exited: ${err()}`);
    const listening = execFileSync('ss', ['-ltnH']).toString();
    if (ports.every((p) => listening.includes(`127.0.0.1:${p} `) && listening.includes(`[::1]:${p} `))) return;
    if (Date.now() > end) throw new Error(`inetd did not listen on ${ports}: ${err()}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

export { existsSync };
