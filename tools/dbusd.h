/*
 * A private dbus-daemon for tests and ipc-bench: started on a socket the
 * caller names, stopped (and its socket removed) by dbusd_stop.  Nothing
 * depends on a session or system bus being there.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_DBUSD_H
#define IPC_DBUSD_H

#include <stddef.h>
#include <sys/types.h>

struct dbusd {
	pid_t pid;         /* the daemon; 0 when not running */
	char sock[256];    /* its socket */
	char address[320]; /* "unix:path=SOCK" */
};

/* Start dbus-daemon (found on PATH) listening on the socket path sock and
 * wait until it accepts connections.  Returns 0; -ENOENT when dbus-daemon
 * is not installed; another negative errno on failure.  why (n bytes)
 * says what went wrong. */
int dbusd_start(struct dbusd *d, const char *sock, char *why, size_t n);
/* Stop it (SIGTERM, then SIGKILL), reap it, remove its socket. */
void dbusd_stop(struct dbusd *d);

#endif
