// A fresh Debian 12 root for one test file: `debootstrap --variant=minbase bookworm`,
// unpacked anew from the tarball scripts/install-test-deps.sh caches, with the
// host's DNS and apt settings so that apt-get reaches Debian's archive.  Everything
// runs in a private mount and PID namespace whose root is chrooted there (so an
// inetd.pid written inside names a process inside, and nothing outlives the test);
// the network is the host's (loopback ports only, as everywhere in the tests).
// A policy-rc.d that refuses every start keeps packages from starting services.
//
// Downloaded packages and apt's lists are kept between runs in TEST_CACHE/root-apt.
import { execFile, spawn } from 'node:child_process';
import { chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_CACHE, BASE_ROOT } from './cache.mjs';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Run a program; resolves { status, stdout, stderr } (never rejects on a non-zero exit). */
export function exec(file, args, { input, timeout = 120_000, env } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout, maxBuffer: 64 << 20, env }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`));
      resolve({ status: error ? error.code : 0, stdout, stderr });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

/**
 * Unpack a fresh root and start the namespace holder.  Resolves
 * { dir, run(argv, opts), start(argv, { chroot }), stop() }:
 *   run    a command inside the root (chrooted, in the holder's namespaces, clean
 *          environment), to its end: { status, stdout, stderr }
 *   start  a long-running one (a ChildProcess); chroot: false runs a host program
 *          in the holder's mount and PID namespaces instead
 */
export async function freshRoot() {
  if (!existsSync(BASE_ROOT)) throw new Error(`${BASE_ROOT} is missing: run scripts/install-test-deps.sh as root`);
  const top = mkdtempSync(join(tmpdir(), 'rexecd-root-'));
  chmodSync(top, 0o755);
  const dir = join(top, 'root');
  mkdirSync(dir);
  const untar = await exec('tar', ['-C', dir, '-xf', BASE_ROOT]);
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr}`);
  copyFileSync('/etc/resolv.conf', join(dir, 'etc/resolv.conf'));
  if (!existsSync(join(dir, 'etc/hosts'))) writeFileSync(join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n');
  // The host's ways to the archive (a proxy, snapshot settings), as on the host.
  for (const f of readdirSync('/etc/apt/apt.conf.d')) {
    if (/proxy|artifact/.test(f)) copyFileSync(join('/etc/apt/apt.conf.d', f), join(dir, 'etc/apt/apt.conf.d', f));
  }
  writeFileSync(join(dir, 'usr/sbin/policy-rc.d'), '#!/bin/sh\n# rexecd tests: no package starts a service in this root\nexit 101\n', { mode: 0o755 });
  const apt = join(TEST_CACHE, 'root-apt');
  // apt downloads as its _apt user (of the root): the partial directories are its.
  const aptUid = Number(/^_apt:x:(\d+):/m.exec(readFileSync(join(dir, 'etc/passwd'), 'utf8'))?.[1] ?? 0);
  for (const d of ['archives/partial', 'lists/partial']) {
    mkdirSync(join(apt, d), { recursive: true });
    chownSync(join(apt, d), aptUid, 0);
  }

  const mounts = [
    `mount -t proc proc ${dir}/proc`,
    `mount --bind ${apt}/archives ${dir}/var/cache/apt/archives`,
    `mount --bind ${apt}/lists ${dir}/var/lib/apt/lists`,
  ].join(' && ');
  const holder = spawn('unshare', ['-m', '-p', '-f', '--propagation', 'private', 'sh', '-c', `${mounts} && exec chroot ${dir} /bin/sleep infinity`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let holderErr = '';
  holder.stderr.on('data', (d) => (holderErr += d));
  // The namespace's PID 1 is unshare's child; ready once it runs chrooted.
  const end = Date.now() + 10_000;
  let pid;
  for (;;) {
    try {
      const child = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
      if (child && readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith('/bin/sleep')) {
        pid = child;
        break;
      }
    } catch {
      // not there yet
    }
    if (holder.exitCode !== null || Date.now() > end) throw new Error(`the root's namespace did not start: ${holderErr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const inRoot = ['-t', pid, '-m', '-p', '-r', '-w', '--', 'env', '-i', PATH, 'LANG=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive'];
  const inNamespace = ['-t', pid, '-m', '-p', '--', 'env', '-i', PATH];
  return {
    dir,
    /** A command inside the root, to its end. */
    run: (argv, opts) => exec('nsenter', [...inRoot, ...argv], opts),
    /** A long-running command inside the root (or, chroot: false, a host program in its namespaces). */
    start: (argv, { chroot = true } = {}) => spawn('nsenter', [...(chroot ? inRoot : inNamespace), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] }),
    async stop() {
      // PID 1 of the namespace takes everything in it along.
      if (holder.exitCode === null) {
        process.kill(Number(pid), 'SIGKILL');
        await new Promise((r) => (holder.exitCode !== null ? r() : holder.once('exit', r)));
      }
      rmSync(top, { recursive: true, force: true });
    },
  };
}
