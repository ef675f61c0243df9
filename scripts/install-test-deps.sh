#!/bin/bash
# What the test suite and the benchmark need on a fresh Debian 12 machine.  `npm test`
# runs this first (package.json "pretest"), so it must be quick when all is there: one
# dpkg-query and a few file tests.  As root it installs what is missing; as anyone
# else it lists what is missing, says how to get it, and fails.  Idempotent.
#
# Debian packages:
#   openbsd-inetd  the real super-server the end-to-end tests run rexecd under
#   rsh-server     Debian's C in.rexecd, the peer for interop tests and the benchmark
#   whois          mkpasswd, to make the test users' password hashes
#   gcc libc6-dev  to build the glibc rexec_af() test client
#   systemd        systemd-socket-activate, for the socket-activation tests
#   hyperfine      the benchmark's timer
#   util-linux     unshare/nsenter/mount for the private-namespace harness
#   iproute2 procps time   ss, ps, /usr/bin/time
#   man-db         man -l, to check that the man pages render (pulls in groff-base)
#   fail2ban       fail2ban-regex and fail2ban-client -d, to test the shipped filter and
#                  jail (etc/fail2ban/) against log lines rexecd really writes
#   debootstrap    the fresh Debian 12 root the .deb is installed into (test/e2e/deb)
#   lintian        the .deb's checks (npm run package:deb, test/e2e/deb)
#
# Not installed, kept in $CACHE (regenerable, so /var/cache):
#   xinetd/        Debian's xinetd unpacked with dpkg -x (usr/sbin/xinetd): xinetd and
#                  openbsd-inetd conflict (both provide inet-superserver), so it is
#                  never installed; the xinetd tests run this copy
#   bookworm-minbase.tar   `debootstrap --variant=minbase bookworm`, the root the .deb
#                  test unpacks afresh on every run (~1 minute to make, once)
#
# rsh-server's maintainer scripts add exec/shell/login to /etc/inetd.conf on all
# interfaces (and enable them again on every upgrade) and try to start the system
# inetd.  A temporary policy-rc.d stops the start, and update-inetd disables those
# lines again.
set -euo pipefail

PACKAGES=(openbsd-inetd rsh-server whois gcc libc6-dev systemd hyperfine util-linux iproute2 procps time man-db fail2ban debootstrap lintian)
# Also in test/harness/cache.mjs (the tests read the cache from there).
CACHE=/var/cache/rexecd-tests
XINETD=$CACHE/xinetd/usr/sbin/xinetd
BASE_ROOT=$CACHE/bookworm-minbase.tar
MIRROR=http://deb.debian.org/debian

missing_packages() {
	# One dpkg-query for all; a package dpkg never heard of is reported on stderr
	# and simply absent from the output.
	local installed
	installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${PACKAGES[@]}" 2>/dev/null | awk '$1 == "ii" { print $2 }') || true
	local p
	for p in "${PACKAGES[@]}"; do
		grep -qx "$p" <<<"$installed" || printf '%s ' "$p"
	done
}

rsh_lines_enabled() {
	[ -f /etc/inetd.conf ] && grep -qE '^(shell|login|exec)[[:space:]]' /etc/inetd.conf
}

missing=$(missing_packages)
need_xinetd=0 need_root=0
[ -x "$XINETD" ] || need_xinetd=1
[ -f "$BASE_ROOT" ] || need_root=1
if [ -z "$missing" ] && [ $need_xinetd = 0 ] && [ $need_root = 0 ] && ! rsh_lines_enabled; then
	exit 0
fi

if [ "$(id -u)" != 0 ]; then
	{
		echo "install-test-deps: the tests need, and this machine lacks:"
		[ -z "$missing" ] || echo "  Debian packages: $missing"
		[ $need_xinetd = 0 ] || echo "  $XINETD (Debian's xinetd, unpacked with dpkg -x, not installed)"
		[ $need_root = 0 ] || echo "  $BASE_ROOT (debootstrap --variant=minbase bookworm, for the .deb test)"
		! rsh_lines_enabled || echo "  rsh-server's lines in /etc/inetd.conf disabled (update-inetd --disable shell,login,exec)"
		echo "Run as root:  bash scripts/install-test-deps.sh   (the tests themselves need root too)"
	} >&2
	exit 1
fi

if [ -n "$missing" ]; then
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		created_policy=1
	fi
	trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
	echo "install-test-deps: installing $missing" >&2
	apt-get update -qq
	# shellcheck disable=SC2086 # one word per package
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	# fail2ban's postinst enables its service at boot, with Debian's sshd jail on
	# (jail.d/defaults-debian.conf); the tests only need its tools.  Undo the boot
	# start when this script installed it, so that no fail2ban server ever runs on
	# a test machine; a fail2ban that was already there is left as it was.
	case " $missing " in *" fail2ban "*) systemctl disable --quiet fail2ban.service ;; esac
fi

if rsh_lines_enabled; then
	update-inetd --disable shell,login,exec
fi

if [ $need_xinetd = 1 ]; then
	echo "install-test-deps: unpacking Debian's xinetd into $CACHE/xinetd (not installing it)" >&2
	mkdir -p "$CACHE"
	work=$(mktemp -d "$CACHE/xinetd.XXXXXX")
	# The download goes into a root-only directory: no _apt sandbox (it could not write there).
	(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root xinetd)
	dpkg -x "$work"/xinetd_*.deb "$work/tree"
	rm -rf "$CACHE/xinetd"
	mv "$work/tree" "$CACHE/xinetd"
	rm -rf "$work"
fi

if [ $need_root = 1 ]; then
	echo "install-test-deps: making $BASE_ROOT (debootstrap minbase bookworm, about a minute)" >&2
	mkdir -p "$CACHE"
	work=$(mktemp -d "$CACHE/root.XXXXXX")
	if ! debootstrap --variant=minbase bookworm "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1; then
		tail -20 "$work/debootstrap.log" >&2
		rm -rf "$work"
		exit 1
	fi
	tar -C "$work/root" -cf "$BASE_ROOT.new" .
	mv "$BASE_ROOT.new" "$BASE_ROOT"
	rm -rf "$work"
fi
