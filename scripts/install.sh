#!/bin/bash
# Installs rexecd from a built checkout (npm ci && npm run build), for administrators
# and packagers:
#
#   scripts/install.sh [--sea] [--system-config]      install
#   scripts/install.sh --uninstall                    remove exactly what was installed
#
# Environment:
#   PREFIX   where it goes (default /usr/local)
#   DESTDIR  a staging root for packagers: every path is written below it, and the
#            code cache is left to the package's postinst (it must be made on the
#            machine that runs rexecd, by the node that runs it)
#   NODE     the node that will run rexecd and rexec (default: `command -v node`;
#            Node >= 20).  Named in the #! line of both, so inetd, xinetd and systemd
#            all start that node, and it builds the code cache.
#   NODE_FLAGS  node options for every start (default none), e.g. --v8-pool-size=1.
#            One word: Linux passes the rest of a #! line as a single argument.
#   SEA      with --sea: the single executable to install (default
#            dist/rexecd-<platform>-<arch>, as `npm run build:sea` makes it)
#
# What goes where (PREFIX=/usr/local; the .deb uses PREFIX=/usr):
#   PREFIX/lib/rexecd/rexecd.cjs          the loader (#!NODE), what launchers run
#   PREFIX/lib/rexecd/rexecd-main.js      the bundle of rexecd
#   PREFIX/lib/rexecd/rexecd-main.cache   its V8 code cache, made here by NODE
#   PREFIX/lib/rexecd/rexec.cjs           the client, bundled (#!NODE)
#   PREFIX/lib/rexecd/koffi/<platform>_<arch>/koffi.node
#   PREFIX/sbin/rexecd -> ../lib/rexecd/rexecd.cjs    what inetd.conf names
#   PREFIX/bin/rexec   -> ../lib/rexecd/rexec.cjs
#   PREFIX/share/man/man8/rexecd.8.gz, man1/rexec.1.gz
#   PREFIX/share/doc/rexecd/README.md, docs/*.md and examples/ (every shipped configuration,
#            naming PREFIX/sbin/rexecd)
# --sea: the single executable (npm run build:sea) instead of the loader, bundle,
#   cache and client: PREFIX/lib/rexecd/rexecd, carrying all four, needs no node;
#   sbin/rexecd and bin/rexec are symlinks to it (started as `rexec` it is the client).
# --system-config: also the configuration files where the system reads them, as the
#   .deb ships them (all of them off until the administrator turns them on):
#   /etc/pam.d/rexec, /etc/xinetd.d/rexec (disable = yes), /etc/fail2ban/filter.d/
#   and jail.d/rexecd.conf (enabled = false), and the systemd units in
#   PREFIX/lib/systemd/system (/lib/systemd/system for PREFIX=/usr; not enabled).
#   Without DESTDIR, a file already there is left alone (it is not ours).
#
# Why symlinks and a #! line and not a wrapper script: every connection under inetd
# pays for every exec before node.  A symlink costs nothing, `#!/usr/bin/env node`
# one more exec and a PATH search, a shell wrapper a shell (docs/install.md,
# "scripts/install.sh", has the measurements).
#
# Every file and directory made is listed in PREFIX/lib/rexecd/install-manifest;
# --uninstall removes those (a system config file changed since is kept, and said).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
NODE_FLAGS=${NODE_FLAGS:-}
TRIPLET=$(uname -s | tr A-Z a-z)_$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')

die() { echo "install.sh: $*" >&2; exit 1; }

flavour=node system_config=0 action=install
for arg in "$@"; do
	case $arg in
		--sea) flavour=sea ;;
		--system-config) system_config=1 ;;
		--uninstall) action=uninstall ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown argument: $arg (see --help)" ;;
	esac
done
case $PREFIX in /*) ;; *) die "PREFIX must be an absolute path, not \"$PREFIX\"" ;; esac
PREFIX=${PREFIX%/}
[ "$PREFIX" != "" ] || die "PREFIX must not be /"
case $DESTDIR in ''|/*) ;; *) die "DESTDIR must be an absolute path, not \"$DESTDIR\"" ;; esac
DESTDIR=${DESTDIR%/}

LIBDIR=$PREFIX/lib/rexecd
SBIN=$PREFIX/sbin
MANIFEST=$LIBDIR/install-manifest
# PAM, xinetd and fail2ban read /etc only, whatever the prefix; systemd also reads
# /usr/local/lib/systemd/system, and Debian 12 puts packaged units in /lib.
SYSCONFDIR=/etc
if [ "$PREFIX" = /usr ]; then UNITDIR=/lib/systemd/system; else UNITDIR=$PREFIX/lib/systemd/system; fi

# ---- How launchers start rexecd, and the shipped configurations (the one place) --
#
# The configurations in the checkout name rexecd as a checkout runs it; installed,
# every launcher names $SBIN/rexecd (node and its flags are in its #! line).  These
# are the rewrites, for inetd.conf ("server argv"), systemd (ExecStart=) and xinetd
# (server, server_args); test/e2e/install checks that no installed file still names
# the checkout.
launch_rewrites=(
	-e "s#/usr/bin/node([[:space:]]+)node[[:space:]]+/opt/rexecd/dist/rexecd\\.cjs#$SBIN/rexecd\\1rexecd#g"
	-e "s#/usr/bin/node[[:space:]]+/opt/rexecd/dist/rexecd\\.cjs#$SBIN/rexecd#g"
	-e "s#(^|[[:space:]])node[[:space:]]+/opt/rexecd/dist/rexecd\\.cjs#\\1rexecd#g"
	-e "s#^([[:space:]]*server[[:space:]]*=[[:space:]]*)/usr/bin/node[[:space:]]*\$#\\1$SBIN/rexecd#"
	-e "/^[[:space:]]*server_args[[:space:]]*=[[:space:]]*\\/opt\\/rexecd\\/dist\\/rexecd\\.cjs[[:space:]]*\$/d"
	-e "s|^([[:space:]]*#?[[:space:]]*server_args[[:space:]]*=[[:space:]]*)/opt/rexecd/dist/rexecd\\.cjs[[:space:]]*|\\1|"
	-e "s#/opt/rexecd/rexecd-linux-x64#$SBIN/rexecd#g"
)
# The shipped configurations: checkout file, then where --system-config puts it
# ("-": examples only).  All of them also go to share/doc/rexecd/examples/.
CONFIGS=(
	"etc/pam.d/rexec                    $SYSCONFDIR/pam.d/rexec"
	"etc/xinetd.d/rexec                 $SYSCONFDIR/xinetd.d/rexec"
	"etc/fail2ban/filter.d/rexecd.conf  $SYSCONFDIR/fail2ban/filter.d/rexecd.conf"
	"etc/fail2ban/jail.d/rexecd.conf    $SYSCONFDIR/fail2ban/jail.d/rexecd.conf"
	"etc/systemd/rexec.socket           $UNITDIR/rexec.socket"
	"etc/systemd/rexec@.service         $UNITDIR/rexec@.service"
	"etc/systemd/rexecd.socket          $UNITDIR/rexecd.socket"
	"etc/systemd/rexecd.service         $UNITDIR/rexecd.service"
	"inetd.conf.example                 -"
)
# ------------------------------------------------------------------------------------

# ---- uninstall ----
if [ $action = uninstall ]; then
	[ -f "$DESTDIR$MANIFEST" ] || die "no $DESTDIR$MANIFEST: nothing installed there (PREFIX=$PREFIX${DESTDIR:+, DESTDIR=$DESTDIR})"
	dirs=()
	while read -r kind sum path; do
		target=$DESTDIR$path
		case $kind in
			d) dirs=("$target" "${dirs[@]}") ;;
			c)
				if [ -f "$target" ] && [ "$(sha256sum < "$target" | cut -d' ' -f1)" != "$sum" ]; then
					echo "install.sh: kept $target: changed since it was installed" >&2
				else
					rm -f "$target"
				fi ;;
			f|l) rm -f "$target" ;;
			*) die "$DESTDIR$MANIFEST: bad line: $kind $sum $path" ;;
		esac
	done < "$DESTDIR$MANIFEST"
	rm -f "$DESTDIR$MANIFEST"
	# Directories this install made, deepest first, if nothing else is in them now.
	for d in "${dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
	echo "install.sh: removed rexecd from $DESTDIR$PREFIX"
	exit 0
fi

# ---- install ----
need() { [ -e "$ROOT/$1" ] || die "$ROOT/$1 is missing: $2"; }
if [ $flavour = sea ]; then
	SEA=${SEA:-$ROOT/dist/rexecd-$(uname -s | tr A-Z a-z)-$(uname -m | sed 's/x86_64/x64/; s/aarch64/arm64/')}
	[ -x "$SEA" ] || die "$SEA is missing: build it first (npm run build:sea)"
else
	for f in dist/rexecd.cjs dist/rexecd-main.js dist/rexec.cjs; do need "$f" "build first (npm ci && npm run build)"; done
	NODE=${NODE:-$(command -v node || true)}
	[ -n "$NODE" ] || die "no node in PATH: set NODE to the node that will run rexecd (>= 20)"
	case $NODE in /*) ;; *) die "NODE must be an absolute path, not \"$NODE\"" ;; esac
	major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null) || die "$NODE does not run"
	[ "$major" -ge 20 ] || die "$NODE is Node $major; rexecd needs Node >= 20"
	case $NODE_FLAGS in *[[:space:]]*) die "NODE_FLAGS must be one word (it goes on the #! line): \"$NODE_FLAGS\"" ;; esac
fi
need "dist/koffi/$TRIPLET/koffi.node" "build first (npm ci && npm run build)"
[ ! -e "$DESTDIR$MANIFEST" ] || die "$DESTDIR$PREFIX already has rexecd ($DESTDIR$MANIFEST): uninstall it first (--uninstall)"

[ -z "$DESTDIR" ] || mkdir -p "$DESTDIR"
manifest_lines=()
record() { manifest_lines+=("$1 $2 $3"); }
# Make a directory and each missing parent, recording the ones made here.
makedir() {
	local d=$1 missing=()
	while [ "$d" != / ] && [ ! -d "$DESTDIR$d" ]; do missing=("$d" "${missing[@]}"); d=$(dirname "$d"); done
	for d in "${missing[@]}"; do
		install -d -m 755 "$DESTDIR$d"
		record d - "$d"
	done
}
# put MODE SOURCE PATH: a file, written atomically (inetd may start it meanwhile).
put() {
	makedir "$(dirname "$3")"
	install -m "$1" "$2" "$DESTDIR$3.new"
	mv -f "$DESTDIR$3.new" "$DESTDIR$3"
	record f - "$3"
}
# put_text MODE PATH < text  (not at the end of a pipe: that would be a subshell,
# and what it records would be lost)
put_text() {
	local tmp
	tmp=$(mktemp)
	cat > "$tmp"
	put "$1" "$tmp" "$2"
	rm -f "$tmp"
}
link() {
	makedir "$(dirname "$2")"
	ln -sfn "$1" "$DESTDIR$2"
	record l - "$2"
}
adjusted() { sed -E "${launch_rewrites[@]}" "$ROOT/$1"; }

# The program.
put 644 "$ROOT/dist/koffi/$TRIPLET/koffi.node" "$LIBDIR/koffi/$TRIPLET/koffi.node"
if [ $flavour = sea ]; then
	put 755 "$SEA" "$LIBDIR/rexecd"
	link ../lib/rexecd/rexecd "$SBIN/rexecd"
	link ../lib/rexecd/rexecd "$PREFIX/bin/rexec"
else
	shebang="#!$NODE${NODE_FLAGS:+ $NODE_FLAGS}"
	put 644 "$ROOT/dist/rexecd-main.js" "$LIBDIR/rexecd-main.js"
	put_text 755 "$LIBDIR/rexecd.cjs" < <(echo "$shebang"; sed 1d "$ROOT/dist/rexecd.cjs")
	put_text 755 "$LIBDIR/rexec.cjs" < <(echo "$shebang"; sed 1d "$ROOT/dist/rexec.cjs")
	link ../lib/rexecd/rexecd.cjs "$SBIN/rexecd"
	link ../lib/rexecd/rexec.cjs "$PREFIX/bin/rexec"
fi

# Manual pages and documentation.
for page in man/rexecd.8 man/rexec.1; do
	put_text 644 "$PREFIX/share/man/man${page##*.}/$(basename "$page").gz" < <(gzip -9n < "$ROOT/$page")
done
put 644 "$ROOT/README.md" "$PREFIX/share/doc/rexecd/README.md"
# The README's links point into docs/: they go beside it.
for doc in "$ROOT"/docs/*.md; do
	put 644 "$doc" "$PREFIX/share/doc/rexecd/docs/$(basename "$doc")"
done
for entry in "${CONFIGS[@]}"; do
	read -r source system <<<"$entry"
	[ -f "$ROOT/$source" ] || continue # not every checkout has every launcher's file
	put_text 644 "$PREFIX/share/doc/rexecd/examples/${source#etc/}" < <(adjusted "$source")
	if [ $system_config = 1 ] && [ "$system" != - ]; then
		if [ -z "$DESTDIR" ] && [ -e "$system" ]; then
			echo "install.sh: left $system as it is (it was there before)" >&2
			continue
		fi
		put_text 644 "$system" < <(adjusted "$source")
		# A configuration file: --uninstall keeps it if it was changed since.
		manifest_lines[-1]="c $(sha256sum < "$DESTDIR$system" | cut -d' ' -f1) $system"
	fi
done

# The code cache, made by the node (and flags) of the #! line, with a clean
# environment as inetd starts rexecd.  Not for a staging root: it is tied to the
# installed file (its inode) and to the node of the machine that runs it.
if [ $flavour = node ] && [ -z "$DESTDIR" ]; then
	env -i "$SBIN/rexecd" --build-code-cache >/dev/null
	record f - "$LIBDIR/rexecd-main.cache"
fi

put_text 644 "$MANIFEST" < <(printf '%s\n' "${manifest_lines[@]}")
echo "install.sh: installed rexecd ($flavour) in $DESTDIR$PREFIX; inetd.conf: exec stream tcp nowait root $SBIN/rexecd rexecd"
