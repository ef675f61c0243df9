#!/bin/bash
# Installs the Debian packages that the test suite and the benchmark need, on a
# fresh Debian 12 machine, as root.  Idempotent.
#
#   openbsd-inetd  the real super-server the end-to-end tests run rexecd under
#   rsh-server     Debian's C in.rexecd, the peer for interop tests and the benchmark
#   whois          mkpasswd, to make the test users' password hashes
#   gcc libc6-dev  to build the glibc rexec_af() test client
#   systemd        systemd-socket-activate, for the socket-activation tests
#   hyperfine      the benchmark's timer
#   util-linux     unshare/nsenter/mount for the private-namespace harness
#   man-db         man -l, to check that man/rexecd.8 renders (pulls in groff-base)
#   fail2ban       fail2ban-regex and fail2ban-client -d, to test the shipped filter and
#                  jail (etc/fail2ban/) against log lines rexecd really writes
#
# rsh-server's maintainer scripts add exec/shell/login to /etc/inetd.conf on all
# interfaces and try to start the system inetd.  A temporary policy-rc.d stops
# the start, and update-inetd disables those lines again afterwards.
set -euo pipefail
PKGS="openbsd-inetd rsh-server whois gcc libc6-dev systemd hyperfine util-linux iproute2 procps time man-db fail2ban"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	[ "$(id -u)" = 0 ] || { echo "install-test-deps: need root to install:$missing" >&2; exit 1; }
	created_policy=0
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		created_policy=1
	fi
	trap '[ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
	# fail2ban's postinst enables its service at boot, with Debian's sshd jail on
	# (jail.d/defaults-debian.conf); the tests only need its tools.  Undo the boot
	# start when this script installed it, so that no fail2ban server ever runs on
	# a test machine; a fail2ban that was already there is left as it was.
	case " $missing " in *" fail2ban "*) systemctl disable --quiet fail2ban.service ;; esac
fi
if [ -f /etc/inetd.conf ] && grep -qE '^(shell|login|exec)[[:space:]]' /etc/inetd.conf; then
	update-inetd --disable shell,login,exec
fi
