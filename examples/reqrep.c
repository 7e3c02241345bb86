/*
 * reqrep: request/reply over any libipc channel, server and client in one
 * file.
 *
 *     ./reqrep server 'unix:///tmp/rr.sock' &
 *     ./reqrep client 'unix:///tmp/rr.sock' 1000
 *
 * The server answers each request with the same text in upper case; the
 * client checks every reply and prints the mean round trip.
 *
 * Transports that accept many peers on one address (unix, tcp: those with
 * IPC_CAP_LISTEN) are served with ipc_listen()/ipc_accept(), CLIENTS
 * clients one after the other (0: forever; see epoll.c for serving several
 * at once).  On the others (shm, fifo, mq, ...) ipc_listen() returns
 * -EOPNOTSUPP: an endpoint there joins exactly two processes, so the
 * server creates it with ipc_open(IPC_CREATE), serves one client and
 * exits.  Run it again for the next client, or give each client its own
 * name.
 *
 * An empty request means "goodbye": the server then moves on to the next
 * client even on a transport that cannot report a client's close.
 *
 * Build: cc reqrep.c $(pkg-config --cflags --libs libipc) -o reqrep
 *
 * SPDX-License-Identifier: MIT
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipc/ipc.h>

#define MAX_REQUEST  4096
#define OPEN_WAIT_MS 5000

static void
fail(const char *what, int err)
{
	fprintf(stderr, "reqrep: %s: %s (%s)\n", what, ipc_strerror(err),
	        ipc_last_error());
}

static double
now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* ------------------------------------------------------------- server -- */

/* Answer requests on one connected channel until the client says goodbye
 * or goes away.  Returns the number of requests served, or -1. */
static long
serve(ipc_channel *ch)
{
	static char buf[MAX_REQUEST];
	long served = 0;

	for (;;) {
		ssize_t n = ipc_recv(ch, buf, sizeof(buf), 0);
		if (n == 0 || n == -EPIPE) {
			return served; /* goodbye, or the client closed */
		}
		if (n < 0) {
			fail("receive", (int)n);
			return -1;
		}
		for (ssize_t i = 0; i < n; i++) {
			buf[i] = (char)toupper((unsigned char)buf[i]);
		}
		n = ipc_send(ch, buf, (size_t)n, 0);
		if (n == -EPIPE) {
			return served;
		}
		if (n < 0) {
			fail("send", (int)n);
			return -1;
		}
		served++;
	}
}

/* A transport without listeners: create the endpoint, serve its one
 * client. */
static int
server_one(const char *uri)
{
	ipc_channel *ch;
	int r = ipc_open(&ch, uri, IPC_CREATE);

	if (r < 0) {
		fail("open", r);
		return 1;
	}
	printf("reqrep: serving one client on %s\n", uri);
	fflush(stdout);
	long served = serve(ch);
	ipc_close(ch);
	if (served < 0) {
		return 1;
	}
	printf("reqrep: client 1: %ld requests\n", served);
	return 0;
}

static int
server(const char *uri, long clients)
{
	ipc_listener *l;
	int r = ipc_listen(&l, uri, 0);

	if (r == -EOPNOTSUPP) {
		return server_one(uri);
	}
	if (r < 0) {
		fail("listen", r);
		return 1;
	}
	printf("reqrep: listening on %s\n", uri);
	fflush(stdout);
	for (long k = 1; clients == 0 || k <= clients; k++) {
		ipc_channel *ch;

		/* Waits for the next client to connect. */
		r = ipc_accept(l, &ch, 0);
		if (r < 0) {
			fail("accept", r);
			break;
		}
		long served = serve(ch);
		ipc_close(ch);
		if (served < 0) {
			r = -1;
			break;
		}
		printf("reqrep: client %ld: %ld requests\n", k, served);
		fflush(stdout);
	}
	ipc_listener_close(l); /* also removes a socket file */
	return r < 0 ? 1 : 0;
}

/* ------------------------------------------------------------- client -- */

static int
open_retry(ipc_channel **ch, const char *uri)
{
	const struct timespec pause = {0, 50 * 1000000L};
	int r;

	for (int waited = 0;; waited += 50) {
		r = ipc_open(ch, uri, 0);
		if ((r != -ENOENT && r != -ECONNREFUSED) ||
		    waited >= OPEN_WAIT_MS) {
			return r;
		}
		nanosleep(&pause, NULL);
	}
}

static int
client(const char *uri, long count)
{
	char req[64], want[64], reply[64];
	double total_us = 0;
	ipc_channel *ch;
	long good = 0;
	int r = open_retry(&ch, uri);

	if (r < 0) {
		fail("open", r);
		return 1;
	}
	for (long i = 0; i < count; i++) {
		int len = snprintf(req, sizeof(req), "request %ld", i);
		double t0 = now_us();

		ssize_t n = ipc_send(ch, req, (size_t)len, 0);
		if (n >= 0) {
			n = ipc_recv(ch, reply, sizeof(reply), 0);
		}
		if (n < 0) {
			fail(i == 0 ? "first request" : "request", (int)n);
			ipc_close(ch);
			return 1;
		}
		total_us += now_us() - t0;
		snprintf(want, sizeof(want), "REQUEST %ld", i);
		if ((size_t)n == strlen(want) &&
		    memcmp(reply, want, (size_t)n) == 0) {
			good++;
		}
	}
	ipc_send(ch, "", 0, 0); /* goodbye */
	ipc_close(ch);
	printf("reqrep: %ld requests, %ld correct replies, mean round trip "
	       "%.1f us\n",
	       count, good, count > 0 ? total_us / (double)count : 0.0);
	return good == count ? 0 : 1;
}

int
main(int argc, char **argv)
{
	long n = 0;

	if (argc < 3 || argc > 4 ||
	    (strcmp(argv[1], "server") != 0 &&
	     strcmp(argv[1], "client") != 0)) {
		fprintf(stderr,
		        "usage: %s server URI [CLIENTS]  (0: forever)\n"
		        "       %s client URI [COUNT]\n",
		        argv[0], argv[0]);
		return 2;
	}
	if (argc == 4) {
		char *end;
		n = strtol(argv[3], &end, 10);
		if (*end != '\0' || n < 0) {
			fprintf(stderr, "reqrep: bad number '%s'\n", argv[3]);
			return 2;
		}
	} else if (argv[1][0] == 'c') {
		n = 1000;
	}
	return argv[1][0] == 's' ? server(argv[2], n) : client(argv[2], n);
}
