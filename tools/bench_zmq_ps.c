/*
 * ipc-bench --pubsub peer: ZeroMQ PUB/SUB over ipc:// (a Unix socket),
 * set up for a lossless comparison: ZMQ_XPUB_NODROP on the publisher, so
 * that a subscriber's pipe at its high-water mark makes the blocking
 * zmq_send wait instead of dropping (as libipc's slow=block), and
 * high-water marks of 16 MiB of messages (at least 16) on both sides, so
 * that the pipes are deep enough for the speed to be measured, not the
 * waiting.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_pubsub.h"

struct zps {
	void *ctx, *sock;
	zmq_msg_t msg;
	unsigned char *buf;
};

static void
url(const struct bench_ps_env *e, char *buf, size_t n)
{
	snprintf(buf, n, "ipc://%s/%s.zps", e->dir, e->token);
}

/* Messages in 16 MiB, at least 16: the high-water mark for size. */
static int
hwm(size_t size)
{
	size_t n = (16u << 20) / (size ? size : 1);
	return n < 16 ? 16 : (int)n;
}

static int
zps_open(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	char u[160];
	int zero = 0;
	struct zps *z = calloc(1, sizeof(*z));
	if (z == NULL || (pub && (z->buf = calloc(1, e->size)) == NULL)) {
		free(z);
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	url(e, u, sizeof(u));
	z->ctx = zmq_ctx_new();
	z->sock = z->ctx ? zmq_socket(z->ctx, pub ? ZMQ_PUB : ZMQ_SUB) : NULL;
	if (z->sock == NULL) {
		goto fail;
	}
	zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
	int one = 1, h = hwm(e->size);
	if (zmq_setsockopt(z->sock, pub ? ZMQ_SNDHWM : ZMQ_RCVHWM, &h,
	                   sizeof(h)) < 0 ||
	    (pub && zmq_setsockopt(z->sock, ZMQ_XPUB_NODROP, &one,
	                           sizeof(one)) < 0)) {
		goto fail;
	}
	if (!pub && zmq_setsockopt(z->sock, ZMQ_SUBSCRIBE, "", 0) < 0) {
		goto fail;
	}
	/* connect() before bind() succeeds and retries in the background. */
	if ((pub ? zmq_bind(z->sock, u) : zmq_connect(z->sock, u)) < 0) {
		goto fail;
	}
	*ep = z;
	return BENCH_OK;
fail:
	bench_why(why, BENCH_FAIL, "%s %s: %s", pub ? "bind" : "connect", u,
	          zmq_strerror(zmq_errno()));
	if (z->sock != NULL) {
		zmq_close(z->sock);
	}
	if (z->ctx != NULL) {
		zmq_ctx_term(z->ctx);
	}
	free(z->buf);
	free(z);
	return BENCH_FAIL;
}

static int
zps_publish(void *ep, const void *hdr, size_t hdr_len, size_t len)
{
	struct zps *z = ep;
	memcpy(z->buf, hdr, hdr_len);
	while (zmq_send(z->sock, z->buf, len, 0) < 0) {
		if (zmq_errno() != EINTR) {
			return -zmq_errno();
		}
	}
	return 0;
}

static int
zps_next(void *ep, const void **buf, size_t *len, int timeout_ms)
{
	struct zps *z = ep;
	zmq_setsockopt(z->sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof(timeout_ms));
	zmq_msg_init(&z->msg);
	if (zmq_msg_recv(&z->msg, z->sock, 0) < 0) {
		int e = zmq_errno();
		zmq_msg_close(&z->msg);
		return e == EAGAIN || e == EINTR ? 0 : -e;
	}
	*buf = zmq_msg_data(&z->msg);
	*len = zmq_msg_size(&z->msg);
	return 1;
}

static void
zps_done(void *ep)
{
	struct zps *z = ep;
	zmq_msg_close(&z->msg);
}

static void
zps_close(void *ep)
{
	struct zps *z = ep;
	zmq_close(z->sock);
	zmq_ctx_term(z->ctx);
	free(z->buf);
	free(z);
}

static void
zps_cleanup(struct bench_ps_env *e)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s.zps", e->dir, e->token);
	unlink(path);
}

const struct bench_ps_ops bench_zmq_ps_ops = {
        .open = zps_open,
        .publish = zps_publish,
        .next = zps_next,
        .done = zps_done,
        .close = zps_close,
        .cleanup = zps_cleanup,
};
