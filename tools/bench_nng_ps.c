/*
 * ipc-bench --pubsub peer: nng pub0/sub0 over ipc:// (a Unix socket).
 * pub0 never waits: a subscriber whose queues are full loses messages
 * (nng has no lossless pub0), so what is delivered is counted.  The
 * queues are as deep as nng allows up to 16 MiB of messages (at least
 * 16): NNG_OPT_SENDBUF on the publisher (per subscriber) and
 * NNG_OPT_RECVBUF on the subscriber, each at most 8192 messages.
 *
 * The losses are counted: each message starts with the section's header,
 * whose first 8 bytes are its sequence number; a subscriber adds up the
 * gaps it sees and, at its end, the messages after its last one up to
 * the publisher's last; the cell's total is printed on stderr at the end
 * of the cell.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "bench_pubsub.h"

/* Shared by the cell's processes (made by prepare before the fork). */
struct nps_count {
	_Atomic uint64_t got, lost;
	_Atomic uint64_t pub_last; /* the publisher's last sequence number */
};

struct nps {
	nng_socket sock;
	nng_msg *msg;
	unsigned char *buf;
	struct nps_count *count; /* subscriber: where its totals go */
	uint64_t last, got, lost;
	int pub;
};

static int
nps_prepare(struct bench_ps_env *e, char *why)
{
	void *p = mmap(NULL, sizeof(struct nps_count), PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		return bench_why(why, BENCH_FAIL, "mmap: %s", strerror(errno));
	}
	memset(p, 0, sizeof(struct nps_count));
	e->state = p;
	return BENCH_OK;
}

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
	n->count = e->state;
	n->pub = pub;
	*ep = n;
	return BENCH_OK;
}

static int
nps_publish(void *ep, const void *hdr, size_t hdr_len, size_t len)
{
	struct nps *n = ep;
	memcpy(n->buf, hdr, hdr_len);
	int rv = nng_send(n->sock, n->buf, len, 0);
	if (rv == 0 && n->count != NULL && hdr_len >= sizeof(uint64_t)) {
		uint64_t seq;
		memcpy(&seq, hdr, sizeof(seq));
		atomic_store_explicit(&n->count->pub_last, seq,
		                      memory_order_relaxed);
	}
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
	if (*len >= sizeof(uint64_t)) {
		uint64_t seq;
		memcpy(&seq, *buf, sizeof(seq));
		if (n->got > 0 && seq > n->last + 1) {
			n->lost += seq - n->last - 1;
		}
		n->last = seq;
		n->got++;
	}
	return 1;
}

static void
nps_done(void *ep)
{
	struct nps *n = ep;
	nng_msg_free(n->msg);
	n->msg = NULL;
}

/* nng 1.5.2's nng_close() of a pub0 socket can wait forever once its
 * subscribers have gone with messages still queued for them (seen with
 * 16 subscribers of 1 MiB: the publisher stuck in nng_close, every
 * subscriber exited).  Close in a thread and give it 2 s; the process
 * ends right after, which releases what the socket held. */
#define CLOSE_WAIT_MS 2000

struct closer {
	nng_socket sock;
	atomic_int done;
};

static void *
close_thread(void *arg)
{
	struct closer *c = arg;
	nng_close(c->sock);
	atomic_store(&c->done, 1);
	return NULL;
}

static void
nps_close(void *ep)
{
	struct nps *n = ep;
	if (n->count != NULL && !n->pub) {
		uint64_t pl = atomic_load(&n->count->pub_last);
		if (n->got > 0 && pl > n->last) {
			n->lost += pl - n->last;
		}
		atomic_fetch_add(&n->count->got, n->got);
		atomic_fetch_add(&n->count->lost, n->lost);
	}
	struct closer *c = calloc(1, sizeof(*c));
	pthread_t t;
	if (c == NULL) {
		nng_close(n->sock);
	} else {
		c->sock = n->sock;
		if (pthread_create(&t, NULL, close_thread, c) != 0) {
			close_thread(c);
		} else {
			pthread_detach(t);
		}
		for (int ms = 0; !atomic_load(&c->done) && ms < CLOSE_WAIT_MS;
		     ms++) {
			bench_sleep_ms(1);
		}
		if (atomic_load(&c->done)) {
			free(c);
		} else {
			fprintf(stderr,
			        "ipc-bench --pubsub nng-ipc: nng_close did "
			        "not "
			        "return within %d ms; leaving it to the "
			        "process's exit\n",
			        CLOSE_WAIT_MS);
		}
	}
	free(n->buf);
	free(n);
}

static void
nps_cleanup(struct bench_ps_env *e)
{
	char path[160];
	snprintf(path, sizeof(path), "%s/%s.nps", e->dir, e->token);
	unlink(path);
	struct nps_count *c = e->state;
	if (c != NULL) {
		uint64_t got = atomic_load(&c->got),
		         lost = atomic_load(&c->lost);
		fprintf(stderr,
		        "ipc-bench --pubsub nng-ipc %zu B, %d subscriber%s: "
		        "lost %llu of %llu messages (%.1f%%), counted from "
		        "the "
		        "sequence numbers, all subscribers together\n",
		        e->size, e->nsubs, e->nsubs == 1 ? "" : "s",
		        (unsigned long long)lost,
		        (unsigned long long)(got + lost),
		        got + lost
		                ? 100.0 * (double)lost / (double)(got + lost)
		                : 0.0);
		munmap(c, sizeof(*c));
		e->state = NULL;
	}
}

const struct bench_ps_ops bench_nng_ps_ops = {
        .prepare = nps_prepare,
        .open = nps_open,
        .publish = nps_publish,
        .next = nps_next,
        .done = nps_done,
        .close = nps_close,
        .cleanup = nps_cleanup,
};
