// Builds the Debian package, dist/rexecd_<version>_<arch>.deb, with dpkg-deb from
// `scripts/install.sh --sea --system-config` into a staging root (PREFIX=/usr):
//
//   /usr/lib/rexecd/rexecd            the single executable (scripts/build-sea.mjs,
//                                     stripped): node, rexecd, its code cache, rexec
//   /usr/lib/rexecd/koffi/<triplet>/koffi.node
//   /usr/sbin/rexecd, /usr/bin/rexec  symlinks to it
//   /usr/share/man/man8/rexecd.8.gz, man1/rexec.1.gz, /usr/share/doc/rexecd/
//   /etc/pam.d/rexec, /etc/xinetd.d/rexec (disable = yes), /etc/fail2ban/...
//                                     (enabled = false): conffiles
//   /lib/systemd/system/rexec.socket, rexec@.service, rexecd.socket, rexecd.service
//                                     (not enabled)
//   maintainer scripts (packaging/deb/): the inetd line added DISABLED with
//   update-inetd, disabled on remove, removed on purge
//
// The single executable, not a dependency on a node: Debian 12's nodejs is 18, and
// rexecd needs >= 20 (docs/install.md, "The Debian package", has the measurements).
// Then lintian: any error fails the build; warnings are printed (docs/install.md
// explains each).
//
//   node scripts/package-deb.mjs [--out DIR] [--node PATH] [--node-license FILE] [--fast]
//     --out           where the .deb goes (default dist)
//     --node          the node the executable is made of (default: the one running this)
//     --node-license  that node's LICENSE file (default: looked for where node's
//                     distributions put it, else taken from npm's node-<platform>-<arch>)
//     --fast          xz -1 instead of dpkg-deb's default xz -6: 6 s instead of 35 s
//                     on 2 cores, 26 MB instead of 22 MB; same contents (the tests)
// Environment: DEB_MAINTAINER (default "rexecd developers <rexecd@example.org>").
// Needs root (files owned by root), dpkg-dev (dpkg-shlibdeps), binutils and lintian.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { bundledPackages } from './bundle.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: { out: { type: 'string' }, node: { type: 'string' }, 'node-license': { type: 'string' }, fast: { type: 'boolean' } },
});
const OUT = args.out ?? join(ROOT, 'dist');
const NODE = args.node ?? process.execPath;
const MAINTAINER = process.env.DEB_MAINTAINER ?? 'rexecd developers <rexecd@example.org>';
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const VERSION = pkg.version;
const ARCH = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();

function fail(message) {
  console.error(`package-deb: ${message}`);
  process.exit(1);
}
const run = (file, argv, opts = {}) => execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...opts });

if (process.geteuid?.() !== 0) fail('run as root: the files of the package are owned by root');
for (const tool of ['dpkg-deb', 'dpkg-shlibdeps', 'strip', 'lintian']) {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) fail(`${tool} is missing (apt-get install dpkg-dev binutils lintian)`);
}
if (!existsSync(join(ROOT, 'dist', 'loader.js'))) fail('build first (npm ci && npm run build)');

const isNodeLicense = (f) => existsSync(f) && readFileSync(f, 'utf8').includes('Node.js is licensed for use as follows');

/**
 * NODE's LICENSE file: given, or where node's distributions put it (beside bin/ in
 * nodejs.org's tarballs, /usr/share/doc/nodejs for NodeSource's package, the
 * node-<platform>-<arch> package of npm's `node`); else the one in that npm package
 * for NODE's version, from the registry (npm pack: ~30 MB, once; npm caches it).
 */
function nodeLicense(version) {
  if (args['node-license']) return args['node-license'];
  const real = realpathSync(NODE);
  const candidates = [join(dirname(real), '..', 'LICENSE'), join(dirname(real), '..', 'node_modules', `node-${process.platform}-${process.arch}`, 'LICENSE')];
  // A node that Debian's package nodejs installed (NodeSource's, for Node >= 20).
  if (spawnSync('dpkg-query', ['-S', real], { encoding: 'utf8' }).stdout?.startsWith('nodejs: ')) candidates.push('/usr/share/doc/nodejs/LICENSE');
  const found = candidates.find(isNodeLicense);
  if (found) return found;
  const npmPackage = `node-${process.platform}-${process.arch}@${version.replace(/^v/, '')}`;
  console.error(`package-deb: no LICENSE of ${NODE} in ${candidates.join(', ')}; taking the one of npm's ${npmPackage}`);
  const dir = join(work, 'node-license');
  mkdirSync(dir);
  const packed = spawnSync('npm', ['pack', '--silent', '--pack-destination', dir, npmPackage], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const tarball = packed.stdout.trim().split('\n').at(-1);
  if (packed.status !== 0 || !tarball) fail(`npm pack ${npmPackage} failed: ${packed.stderr}; give the LICENSE with --node-license FILE`);
  run('tar', ['-xzf', join(dir, tarball), '-C', dir, 'package/LICENSE']);
  const license = join(dir, 'package', 'LICENSE');
  if (!isNodeLicense(license)) fail(`${npmPackage} has no Node.js LICENSE; give it with --node-license FILE`);
  return license;
}

const work = mkdtempSync(join(tmpdir(), 'rexecd-deb-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const stage = join(work, 'root');

// 1. The single executable, stripped, made of NODE.
const sea = join(work, 'sea');
const built = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-sea.mjs'), '--node', NODE, '--out', sea, '--strip'], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
if (built.status !== 0) fail(`build-sea failed (exit ${built.status})`);
const seaExe = join(sea, `rexecd-${process.platform}-${process.arch}`);

// 2. The install, as a packager's: PREFIX=/usr into the staging root.
run('bash', [join(ROOT, 'scripts', 'install.sh'), '--sea', '--system-config'], {
  env: { PATH: process.env.PATH, DESTDIR: stage, PREFIX: '/usr', SEA: seaExe },
  stdio: ['ignore', 'ignore', 'inherit'],
});
rmSync(join(stage, 'usr/lib/rexecd/install-manifest')); // dpkg keeps its own list

// 3. Documentation Debian requires: copyright (ours, the bundled packages', and
// Node.js's LICENSE beside it: it holds full texts of licenses Debian keeps in
// /usr/share/common-licenses, which a copyright file must refer to instead), a
// changelog, and the README compressed (Policy 12.3: documentation over 4 kB).
const doc = join(stage, 'usr/share/doc/rexecd');
const nodeVersion = run(NODE, ['--version'], { env: {} }).trim();
writeFileSync(join(doc, 'LICENSE.nodejs.gz'), gzipSync(readFileSync(nodeLicense(nodeVersion)), { level: 9 }), { mode: 0o644 });
writeFileSync(join(doc, 'README.md.gz'), gzipSync(readFileSync(join(doc, 'README.md')), { level: 9 }), { mode: 0o644 });
rmSync(join(doc, 'README.md'));
let copyright = readFileSync(join(ROOT, 'packaging/deb/copyright'), 'utf8').replace('@NODE_VERSION@', nodeVersion);
for (const dir of bundledPackages()) {
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) fail(`${dir} has no license file`);
  copyright += `\n\n==== ${meta.name} ${meta.version} (npm, ${meta.license}) ====\n\n${readFileSync(join(dir, file), 'utf8')}`;
}
writeFileSync(join(doc, 'copyright'), copyright, { mode: 0o644 });
const commit = spawnSync('git', ['-C', ROOT, 'log', '-1', '--format=%h %cD'], { encoding: 'utf8' });
const [hash, ...date] = commit.status === 0 ? commit.stdout.trim().split(' ') : ['', new Date().toUTCString()];
const changelog = `rexecd (${VERSION}) unstable; urgency=medium\n\n  * Built from the rexecd repository${hash ? ` at commit ${hash}` : ''}.\n\n -- ${MAINTAINER}  ${date.join(' ').replace(/GMT$/, '+0000')}\n`;
writeFileSync(join(doc, 'changelog.gz'), gzipSync(changelog, { level: 9 }), { mode: 0o644 });

// Why lintian's embedded-library error does not apply here (packaging/deb/lintian-overrides).
mkdirSync(join(stage, 'usr/share/lintian/overrides'), { recursive: true, mode: 0o755 });
copyFileSync(join(ROOT, 'packaging/deb/lintian-overrides'), join(stage, 'usr/share/lintian/overrides/rexecd'));
chmodSync(join(stage, 'usr/share/lintian/overrides/rexecd'), 0o644);

// 4. The control area.
const control = join(stage, 'DEBIAN');
mkdirSync(control, { mode: 0o755 });
for (const script of ['postinst', 'prerm', 'postrm']) {
  copyFileSync(join(ROOT, 'packaging/deb', script), join(control, script));
  chmodSync(join(control, script), 0o755);
}
const files = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== control) walk(p);
    } else if (e.isFile()) files.push(relative(stage, p));
  }
};
walk(stage);
files.sort();
writeFileSync(join(control, 'conffiles'), files.filter((f) => f.startsWith('etc/')).map((f) => `/${f}\n`).join(''), { mode: 0o644 });
writeFileSync(join(control, 'md5sums'), files.map((f) => `${createHash('md5').update(readFileSync(join(stage, f))).digest('hex')}  ${f}\n`).join(''), { mode: 0o644 });

// What the ELF files need, as dpkg-shlibdeps finds it (it wants a debian/control).
mkdirSync(join(work, 'shlibs', 'debian'), { recursive: true });
writeFileSync(join(work, 'shlibs', 'debian', 'control'), 'Source: rexecd\n\nPackage: rexecd\nArchitecture: any\n');
const elf = files.filter((f) => f === 'usr/lib/rexecd/rexecd' || f.endsWith('.node')).map((f) => `-e${join(stage, f)}`);
const shlibs = run('dpkg-shlibdeps', ['-O', ...elf], { cwd: join(work, 'shlibs'), stdio: ['ignore', 'pipe', 'pipe'] });
const shlibsDepends = /^shlibs:Depends=(.*)$/m.exec(shlibs)?.[1];
if (!shlibsDepends) fail(`dpkg-shlibdeps said: ${shlibs}`);
// And what rexecd opens itself (dlopen through koffi) or names: libpam.so.0 and the
// modules /etc/pam.d/rexec uses, libcrypt.so.1 (--auth shadow), update-inetd.
const depends = [shlibsDepends, 'libpam0g', 'libpam-modules', 'libpam-runtime', 'libcrypt1', 'update-inetd'].join(', ');
const installedSize = Math.ceil(files.reduce((n, f) => n + statSync(join(stage, f)).size, 0) / 1024);
writeFileSync(
  join(control, 'control'),
  `Package: rexecd
Version: ${VERSION}
Architecture: ${ARCH}
Maintainer: ${MAINTAINER}
Installed-Size: ${installedSize}
Depends: ${depends}
Suggests: openbsd-inetd | inet-superserver, fail2ban
Conflicts: rsh-server
Replaces: rsh-server
Section: net
Priority: optional
Description: careful rexec(3) server (port 512) and client
 rexecd serves the classic BSD rexec protocol (service exec): it checks the
 user's password with PAM (service rexec) or the shadow file, becomes the user
 and execs the user's shell with the command.  It fixes what the historic C
 servers get wrong: it has timeouts and bounded buffers, answers every refusal
 alike, logs the real reason to syslog and checks every change of privilege.
 .
 It runs under inetd (the "exec" line is added disabled: update-inetd --enable
 exec), xinetd (/etc/xinetd.d/rexec, disabled) or systemd socket activation
 (rexec.socket, or rexecd.socket for the listener; not enabled).  rexec sends
 passwords in clear text: use it only on networks you trust.
 .
 The program is a Node.js single executable: it needs no Node.js installed.
 The package conflicts with rsh-server, which also provides the PAM service
 rexec and the inetd service exec.
`,
  { mode: 0o644 },
);

// 5. The package, then lintian.
mkdirSync(OUT, { recursive: true });
const deb = join(OUT, `rexecd_${VERSION}_${ARCH}.deb`);
run('dpkg-deb', ['--root-owner-group', '-Zxz', `-z${args.fast ? 1 : 6}`, '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
const lint = spawnSync('lintian', ['--fail-on', 'error', '--tag-display-limit', '0', deb], { encoding: 'utf8' });
process.stdout.write(lint.stdout);
if (lint.status !== 0) fail(`lintian found errors in ${deb}:\n${lint.stderr}`);
console.log(`package-deb: ${deb} (${(statSync(deb).size / 1e6).toFixed(1)} MB; node ${nodeVersion}; lintian: ${lint.stdout.trim().split('\n').filter(Boolean).length} tags, no error)`);
