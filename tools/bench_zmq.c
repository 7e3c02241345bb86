/*
 * ipc-bench peer: ZeroMQ, a ZMQ_PAIR socket over ipc:// (a Unix socket),
 * with zmq_send/zmq_recv, default options (I/O thread, high-water marks).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "bench_peers.h"

struct zep {
	void *ctx, *sock;
};

static void
zmq_url(const struct bench_env *e, char *buf, size_t n)
{
	snprintf(buf, n, "ipc://%s/%s.zmq", e->dir, e->token);
}

static int
z_open(struct bench_env *e, const void *arg, int server, void **ep, char *why)
{
	(void)arg;
	char url[160];
	int zero = 0;
	struct zep *z = calloc(1, sizeof(*z));
	if (z == NULL) {
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	zmq_url(e, url, sizeof(url));
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, ZMQ_PAIR) : NULL;
	if (z->sock == NULL) {
		goto fail;
	}
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* connect() to an address nobody binds yet succeeds and retries in
	 * the background, so B needs no retry loop here. */
	if ((server ? zmq_bind(z->sock, url) : zmq_connect(z->sock, url)) <
	    0) {
		goto fail;
	}
	*ep = z;
	return BENCH_OK;
fail:
	bench_why(why, BENCH_FAIL, "%s %s: %s", server ? "bind" : "connect",
	          url, zmq_strerror(zmq_errno()));
	if (z->sock != NULL) {
		zmq_close(z->sock);
	}
	if (z->ctx != NULL) {
		zmq_ctx_term(z->ctx);
	}
	free(z);
	return BENCH_FAIL;
}

static ssize_t
z_send(void *ep, const void *buf, size_t len)
{
	struct zep *z = ep;
	for (;;) {
		int n = zmq_send(z->sock, buf, len, 0);
		if (n >= 0) {
			return n;
		}
		if (zmq_errno() != EINTR) {
			return -zmq_errno();
		}
	}
}

static ssize_t
z_recv(void *ep, void *buf, size_t cap)
{
	struct zep *z = ep;
	for (;;) {
		int n = zmq_recv(z->sock, buf, cap, 0);
		if (n >= 0) {
			return (size_t)n > cap ? -EMSGSIZE : n;
		}
		if (zmq_errno() != EINTR) {
			return -zmq_errno();
		}
	}
}

static size_t
z_max_msg(void *ep)
{
	(void)ep;
	return (size_t)1 << 30;
}

static const char *
z_errstr(void *ep)
{
	(void)ep;
	return zmq_strerror(zmq_errno());
}

static void
z_close(void *ep, int server)
{
	struct zep *z = ep;
	(void)server;
	zmq_close(z->sock);
	zmq_ctx_term(z->ctx);
	free(z);
}

static void
z_cleanup(struct bench_env *e, const void *arg)
{
	(void)arg;
	char path[160];
	snprintf(path, sizeof(path), "%s/%s.zmq", e->dir, e->token);
	unlink(path);
}

const struct bench_ops bench_zmq_ops = {
        .open = z_open,
        .send = z_send,
        .recv = z_recv,
        .max_msg = z_max_msg,
        .errstr = z_errstr,
        .close = z_close,
        .cleanup = z_cleanup,
};
