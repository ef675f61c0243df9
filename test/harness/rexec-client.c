/*
 * rexec-client: the tests' real client.  Its protocol code is glibc's rexec_af(3);
 * this file only relays the streams once rexec_af() has done the protocol.
 *
 *   rexec-client [-4|-6] [-E] [-n] -l user -p pass host port command...
 *     -E  no stderr channel (fd2p = NULL: glibc sends an empty port field)
 *     -n  send no stdin: half-close the connection at once
 * Exit: 0 when both streams reached EOF; 1 when rexec_af() failed (glibc printed the
 * server's diagnostic or an error); 2 on usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

static int copy_some(int from, int to)
{
	char buf[65536];
	ssize_t n = read(from, buf, sizeof buf);
	if (n <= 0)
		return 0;
	for (ssize_t done = 0; done < n;) {
		ssize_t w = write(to, buf + done, (size_t)(n - done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return 0;
		done += w;
	}
	return 1;
}

int main(int argc, char **argv)
{
	sa_family_t af = AF_UNSPEC;
	int with_stderr = 1, with_stdin = 1, c;
	const char *user = NULL, *pass = NULL;
	while ((c = getopt(argc, argv, "+46Enl:p:")) != -1) {
		switch (c) {
		case '4': af = AF_INET; break;
		case '6': af = AF_INET6; break;
		case 'E': with_stderr = 0; break;
		case 'n': with_stdin = 0; break;
		case 'l': user = optarg; break;
		case 'p': pass = optarg; break;
		default: return 2;
		}
	}
	if (argc - optind < 3 || !user || !pass) {
		fprintf(stderr, "usage: rexec-client [-4|-6] [-E] [-n] -l user -p pass host port command...\n");
		return 2;
	}
	char *host = argv[optind];
	int port = atoi(argv[optind + 1]);
	size_t len = 1;
	for (int i = optind + 2; i < argc; i++)
		len += strlen(argv[i]) + 1;
	char *cmd = calloc(1, len);
	for (int i = optind + 2; i < argc; i++) {
		if (i > optind + 2)
			strcat(cmd, " ");
		strcat(cmd, argv[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	int fd2 = -1;
	int s = rexec_af(&host, htons((unsigned short)port), user, pass, cmd, with_stderr ? &fd2 : NULL, af);
	if (s < 0)
		return 1;
	int in_open = with_stdin, out_open = 1, err_open = fd2 >= 0;
	if (!in_open)
		shutdown(s, SHUT_WR);
	while (out_open || err_open) {
		struct pollfd p[3];
		int n = 0, io = -1, ie = -1, is = -1;
		if (out_open) { p[n].fd = s; p[n].events = POLLIN; io = n++; }
		if (err_open) { p[n].fd = fd2; p[n].events = POLLIN; ie = n++; }
		if (in_open) { p[n].fd = 0; p[n].events = POLLIN; is = n++; }
		if (poll(p, (nfds_t)n, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (io >= 0 && p[io].revents && !copy_some(s, 1))
			out_open = 0;
		if (ie >= 0 && p[ie].revents && !copy_some(fd2, 2))
			err_open = 0;
		if (is >= 0 && p[is].revents && !copy_some(0, s)) {
			in_open = 0;
			shutdown(s, SHUT_WR);
		}
	}
	return 0;
}
