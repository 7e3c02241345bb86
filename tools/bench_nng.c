/*
 * ipc-bench peer: nng, a pair1 socket over ipc:// (a Unix socket), with
 * nng_send/nng_recv into caller buffers.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>

#include "bench.h"
#include "bench_peers.h"
#include "bench_pubsub.h"

#define DIAL_TRIES 5000 /* x 1 ms */

struct nep {
	nng_socket sock;
	int last; /* last nng error */
};

static void
pair_url(const struct bench_env *e, char *buf, size_t n)
{
	snprintf(buf, n, "ipc://%s/%s.nng", e->dir, e->token);
}

int
bench_nng_attach(nng_socket sock, const char *url, int listener)
{
	int rv = NNG_ECONNREFUSED;
	if (listener) {
		return nng_listen(sock, url, NULL, 0);
	}
	for (int i = 0; i < DIAL_TRIES; i++) {
		rv = nng_dial(sock, url, NULL, 0);
		if (rv != NNG_ECONNREFUSED && rv != NNG_ENOENT) {
			break;
		}
		bench_sleep_ms(1);
	}
	return rv;
}

static int
n_open(struct bench_env *e, const void *arg, int server, void **ep, char *why)
{
	(void)arg;
	char url[160];
	int rv;
	struct nep *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	pair_url(e, url, sizeof(url));
	if ((rv = nng_pair1_open(&n->sock)) != 0) {
		free(n);
		return bench_why(why, BENCH_FAIL, "nng_pair1_open: %s",
		                 nng_strerror(rv));
	}
	/* The default limit (1 MiB) is below our largest message. */
	nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, 0);
	rv = bench_nng_attach(n->sock, url, server);
	if (rv != 0) {
		nng_close(n->sock);
		free(n);
		return bench_why(why, BENCH_FAIL, "%s %s: %s",
		                 server ? "listen" : "dial", url,
		                 nng_strerror(rv));
	}
	*ep = n;
	return BENCH_OK;
}

static int
n_err(struct nep *n, int rv)
{
	n->last = rv;
	switch (rv) {
	case NNG_ECLOSED:
		return -EPIPE;
	case NNG_ETIMEDOUT:
		return -ETIMEDOUT;
	case NNG_ENOMEM:
		return -ENOMEM;
	case NNG_EMSGSIZE:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}

static ssize_t
n_send(void *ep, const void *buf, size_t len)
{
	struct nep *n = ep;
	int rv = nng_send(n->sock, (void *)buf, len, 0);
	return rv == 0 ? (ssize_t)len : n_err(n, rv);
}

static ssize_t
n_recv(void *ep, void *buf, size_t cap)
{
	struct nep *n = ep;
	size_t sz = cap;
	int rv = nng_recv(n->sock, buf, &sz, 0);
	return rv == 0 ? (ssize_t)sz : n_err(n, rv);
}

static size_t
n_max_msg(void *ep)
{
	(void)ep;
	return (size_t)1 << 30;
}

static const char *
n_errstr(void *ep)
{
	struct nep *n = ep;
	return n->last ? nng_strerror(n->last) : "";
}

static void
n_close(void *ep, int server)
{
	struct nep *n = ep;
	(void)server;
	nng_close(n->sock);
	free(n);
}

static void
n_cleanup(struct bench_env *e, const void *arg)
{
	(void)arg;
	char path[160];
	snprintf(path, sizeof(path), "%s/%s.nng", e->dir, e->token);
	unlink(path);
}

const struct bench_ops bench_nng_ops = {
        .open = n_open,
        .send = n_send,
        .recv = n_recv,
        .max_msg = n_max_msg,
        .errstr = n_errstr,
        .close = n_close,
        .cleanup = n_cleanup,
};
