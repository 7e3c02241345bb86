/*
 * ipc-bench --pubsub peer: nng pub0/sub0 over ipc:// (a Unix socket).
 * pub0 never waits: a subscriber whose queues are full loses messages
 * (nng has no lossless pub0), so what is delivered is counted.  The
 * queues are as deep as nng allows up to 16 MiB of messages (at least
 * 16): NNG_OPT_SENDBUF on the publisher (per subscriber) and
 * NNG_OPT_RECVBUF on the subscriber, each at most 8192 messages.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bench_pubsub.h"

struct nps {
	nng_socket sock;
	nng_msg *msg;
	unsigned char *buf;
};

/* Messages in 16 MiB, at least 16, at most nng's 8192. */
static int
qdepth(size_t size)
{
	size_t n = (16u << 20) / (size ? size : 1);
	return n < 16 ? 16 : n > 8192 ? 8192 : (int)n;
}

static int
nps_open(struct bench_ps_env *e, int pub, void **ep, char *why)
{
	char url[160];
	int rv;
	struct nps *n = calloc(1, sizeof(*n));
	if (n == NULL || (pub && (n->buf = calloc(1, e->size)) == NULL)) {
		free(n);
		return bench_why(why, BENCH_FAIL, "out of memory");
	}
	snprintf(url, sizeof(url), "ipc://%s/%s.nps", e->dir, e->token);
	rv = pub ? nng_pub0_open(&n->sock) : nng_sub0_open(&n->sock);
	if (rv == 0) {
		rv = nng_socket_set_int(
		        n->sock, pub ? NNG_OPT_SENDBUF : NNG_OPT_RECVBUF,
		        qdepth(e->size));
	}
	if (rv == 0 && !pub) {
		nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ, 0);
		rv = nng_socket_set(n->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	}
	if (rv == 0) {
		rv = bench_nng_attach(n->sock, url, pub);
	}
	if (rv != 0) {
		nng_close(n->sock);
		free(n->buf);
		free(n);
		return bench_why(why, BENCH_FAIL, "%s %s: %s",
		                 pub ? "listen" : "dial", url,
		                 nng_strerror(rv));
	}
	*ep = n;
	return BENCH_OK;
}

static int
nps_publish(void *ep, const void *hdr, size_t hdr_len, size_t len)
{
	struct nps *n = ep;
	memcpy(n->buf, hdr, hdr_len);
	int rv = nng_send(n->sock, n->buf, len, 0);
	return rv == 0 ? 0 : -EIO;
}

static int
nps_next(void *ep, const void **buf, size_t *len, int timeout_ms)
{
	struct nps *n = ep;
	nng_socket_set_ms(n->sock, NNG_OPT_RECVTIMEO, timeout_ms);
	int rv = nng_recvmsg(n->sock, &n->msg, 0);
	if (rv == NNG_ETIMEDOUT) {
		return 0;
	}
	if (rv != 0) {
		return -EPIPE;
	}
	*buf = nng_msg_body(n->msg);
	*len = nng_msg_len(n->msg);
	return 1;
}

static void
nps_done(void *ep)
{
	struct nps *n = ep;
	nng_msg_free(n->msg);
	n->msg = NULL;
}

static void
nps_close(void *ep)
{
	struct nps *n = ep;
	nng_close(n->sock);
	free(n->buf);
	free(n);
}

static void
nps_cleanup(struct bench_ps_env *e)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s.nps", e->dir, e->token);
	unlink(path);
}

const struct bench_ps_ops bench_nng_ps_ops = {
        .open = nps_open,
        .publish = nps_publish,
        .next = nps_next,
        .done = nps_done,
        .close = nps_close,
        .cleanup = nps_cleanup,
};
