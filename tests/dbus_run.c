/*
 * dbus-run PROGRAM [ARG...]: run PROGRAM with a private dbus-daemon.
 *
 * The daemon listens on a socket in a fresh directory under $TMPDIR (or
 * /tmp); every "@BUS@" in the arguments becomes its address
 * ("unix:path=DIR/bus"), and DBUS_SESSION_BUS_ADDRESS is set to it.
 * Afterwards the daemon is stopped and the directory removed.  Exit
 * status: PROGRAM's; 77 (skipped, with the reason printed) when
 * dbus-daemon is not installed.  The conformance suite runs over dbus://
 * this way (tests/meson.build).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dbusd.h"

static char *
subst(const char *arg, const char *addr)
{
	const char *at = strstr(arg, "@BUS@");

	if (at == NULL) {
		return strdup(arg);
	}
	size_t n = strlen(arg) - 5 + strlen(addr) + 1;
	char *s = malloc(n);
	if (s != NULL) {
		snprintf(s, n, "%.*s%s%s", (int)(at - arg), arg, addr, at + 5);
	}
	return s;
}

int
main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256], sock[300], why[256];
	struct dbusd d;
	int status = 1;

	if (argc < 2) {
		fprintf(stderr, "usage: dbus-run PROGRAM [ARG...]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/ipcdbus-XXXXXX",
	         tmp != NULL && *tmp == '/' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		perror("dbus-run: mkdtemp");
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/bus", dir);
	int r = dbusd_start(&d, sock, why, sizeof(why));
	if (r < 0) {
		rmdir(dir);
		printf("SKIP: no private D-Bus daemon: %s\n", why);
		return r == -ENOENT ? 77 : 1;
	}
	char **args = calloc((size_t)argc, sizeof(*args));
	int ok = args != NULL;
	for (int i = 1; ok && i < argc; i++) {
		args[i - 1] = subst(argv[i], d.address);
		ok = args[i - 1] != NULL;
	}
	setenv("DBUS_SESSION_BUS_ADDRESS", d.address, 1);
	pid_t pid = ok ? fork() : -1;
	if (pid == 0) {
		execv(args[0], args);
		perror("dbus-run: exec");
		_exit(127);
	}
	if (pid > 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
		}
		status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	} else {
		perror("dbus-run: fork");
	}
	dbusd_stop(&d);
	rmdir(dir);
	for (int i = 0; args != NULL && i < argc - 1; i++) {
		free(args[i]);
	}
	free(args);
	return status;
}
