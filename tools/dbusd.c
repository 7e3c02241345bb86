/*
 * A private dbus-daemon: see dbusd.h.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dbusd.h"

#define READY_MS 10000 /* the daemon prints its address when it listens */

static int
on_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[512];

	if (path == NULL) {
		path = "/usr/bin:/bin";
	}
	while (*path != '\0') {
		size_t k = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/%s", (int)k, path, prog);
		if (k > 0 && access(buf, X_OK) == 0) {
			return 1;
		}
		path += k + (path[k] == ':');
	}
	return 0;
}

static void
child(int wfd, const char *listen)
{
	char pa[32];

	/* Never outlive the test or benchmark that started it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	snprintf(pa, sizeof(pa), "--print-address=%d", wfd);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null,
		     2); /* it complains about RLIMIT_NOFILE as non-root */
	}
	execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork",
	       "--nopidfile", listen, pa, (char *)NULL);
	_exit(127);
}

int
dbusd_start(struct dbusd *d, const char *sock, char *why, size_t n)
{
	char listen[400], line[512];
	int pfd[2];
	size_t got = 0;

	memset(d, 0, sizeof(*d));
	if (!on_path("dbus-daemon")) {
		snprintf(why, n,
		         "dbus-daemon is not installed (Debian: "
		         "dbus-daemon)");
		return -ENOENT;
	}
	if (strlen(sock) >= sizeof(d->sock)) {
		snprintf(why, n, "socket path too long");
		return -ENAMETOOLONG;
	}
	snprintf(d->sock, sizeof(d->sock), "%s", sock);
	snprintf(d->address, sizeof(d->address), "unix:path=%s", sock);
	snprintf(listen, sizeof(listen), "--address=%s", d->address);
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(why, n, "pipe: %s", strerror(errno));
		return -errno;
	}
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		snprintf(why, n, "fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		close(pfd[0]);
		fcntl(pfd[1], F_SETFD, 0);
		child(pfd[1], listen);
	}
	close(pfd[1]);
	d->pid = pid;
	/* It writes its address once it listens. */
	for (;;) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		int r = poll(&p, 1, READY_MS);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			snprintf(why, n,
			         "dbus-daemon did not start within "
			         "%d ms",
			         READY_MS);
			break;
		}
		ssize_t k = read(pfd[0], line + got, sizeof(line) - 1 - got);
		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			snprintf(why, n, "dbus-daemon exited at start");
			break;
		}
		got += (size_t)k;
		line[got] = '\0';
		if (strchr(line, '\n') != NULL) {
			close(pfd[0]);
			return 0;
		}
		if (got == sizeof(line) - 1) {
			snprintf(why, n, "dbus-daemon printed no address");
			break;
		}
	}
	close(pfd[0]);
	dbusd_stop(d);
	return -EIO;
}

void
dbusd_stop(struct dbusd *d)
{
	if (d->pid <= 0) {
		return;
	}
	kill(d->pid, SIGTERM);
	for (int i = 0; i < 200; i++) {
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			break;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
	unlink(d->sock);
}
