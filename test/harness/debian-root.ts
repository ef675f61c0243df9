// A fresh Debian 12 root for one test file: `debootstrap --variant=minbase bookworm`,
// unpacked anew from the tarball scripts/install-test-deps.sh caches, with the
// host's DNS and apt settings so that apt-get reaches Debian's archive.  Everything
// runs in a private mount and PID namespace whose root is chrooted there (so an
// inetd.pid written inside names a process inside, and nothing outlives the test);
// the network is the host's (loopback ports only, as everywhere in the tests).
// A policy-rc.d that refuses every start keeps packages from starting services.
//
// Downloaded packages and apt's lists are kept between runs in TEST_CACHE/root-apt.
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE_ROOT, TEST_CACHE } from './cache';
import { Watched, exited } from './processes';
import { waitFor } from './wait';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Ran {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run a program without blocking this process (a syslog sink may live here: a
 * rexecd whose log datagrams nobody reads waits in syslog(3)).  Resolves its exit
 * status and output; rejects only if it could not run or ran out of time.
 */
export function exec(file: string, args: readonly string[], { timeout = 120_000 }: { timeout?: number } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8', timeout, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(new Error(`${file} ${args.join(' ')}: ${error.message}\n${stderr}`));
      resolve({ status: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
}

export interface DebianRoot {
  /** The root's directory, as the host sees it. */
  readonly dir: string;
  /** A command inside the root (chrooted, in its namespaces, a clean environment), to its end. */
  run(argv: readonly string[], opts?: { timeout?: number }): Promise<Ran>;
  /** A long-running command inside the root; chroot: false runs a host program in the root's namespaces instead. */
  start(argv: readonly string[], opts?: { chroot?: boolean }): Watched;
  /** Ends everything in the root's namespaces and removes the root. */
  stop(): Promise<void>;
}

/** Unpack a fresh root and start the process that holds its namespaces. */
export async function freshRoot(): Promise<DebianRoot> {
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

  const mounts = [`mount -t proc proc ${dir}/proc`, `mount --bind ${apt}/archives ${dir}/var/cache/apt/archives`, `mount --bind ${apt}/lists ${dir}/var/lib/apt/lists`].join(' && ');
  const holder = new Watched('unshare', ['-m', '-p', '-f', '--propagation', 'private', 'sh', '-c', `${mounts} && exec chroot ${dir} /bin/sleep infinity`]);
  // The namespace's PID 1 is unshare's child; ready once it runs chrooted.
  const pid = await waitFor(
    () => {
      try {
        const child = readFileSync(`/proc/${holder.pid}/task/${holder.pid}/children`, 'utf8').trim();
        return child !== '' && readFileSync(`/proc/${child}/cmdline`, 'utf8').startsWith('/bin/sleep') ? child : undefined;
      } catch {
        return holder.running ? undefined : 'gone';
      }
    },
    () => `the root's namespaces did not start: ${holder.output()}`,
  );
  if (pid === 'gone') throw new Error(`the root's namespaces did not start: ${holder.output()}`);
  const inRoot = ['-t', pid, '-m', '-p', '-r', '-w', '--', 'env', '-i', PATH, 'LANG=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive'];
  const inNamespaces = ['-t', pid, '-m', '-p', '--', 'env', '-i', PATH];
  return {
    dir,
    run: (argv, { timeout } = {}) => exec('nsenter', [...inRoot, ...argv], { timeout }),
    start: (argv, { chroot = true } = {}) => new Watched('nsenter', [...(chroot ? inRoot : inNamespaces), ...argv]),
    async stop() {
      // PID 1 of the namespace takes everything in it along.
      if (holder.running) {
        process.kill(Number(pid), 'SIGKILL');
        await exited(holder.child);
      }
      rmSync(top, { recursive: true, force: true });
    },
  };
}
