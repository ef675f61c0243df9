// scripts/install.sh as the tests run it, and what a directory tree holds.
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { NODE, ROOT } from './paths';

export const INSTALL_SH = join(ROOT, 'scripts', 'install.sh');

export interface InstallRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Run scripts/install.sh with PREFIX (and DESTDIR when given), NODE = the node the
 * tests run rexecd with; env adds to or overrides that.  args: e.g.
 * ['--system-config'], ['--uninstall'].
 */
export function runInstall({ prefix, destdir, args = [], env = {} }: { prefix: string; destdir?: string; args?: readonly string[]; env?: Readonly<Record<string, string>> }): InstallRun {
  const r = spawnSync('bash', [INSTALL_SH, ...args], {
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', NODE, PREFIX: prefix, ...(destdir ? { DESTDIR: destdir } : {}), ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Every path under dir, relative, sorted, with its kind: "f path" (anything but a
 * directory or a symlink), "l path" (symlink), "d path" (directory).
 */
export function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(dir, rel))) {
      const path = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, path));
      if (st.isSymbolicLink()) out.push(`l ${path}`);
      else if (st.isDirectory()) {
        out.push(`d ${path}`);
        walk(path);
      } else out.push(`f ${path}`);
    }
  };
  walk('');
  return out.sort();
}
