/*
 * The subscriber end of publish/subscribe over listeners (pubsub.h):
 * a connecting channel of the driver underneath, whose messages start
 * with the publisher's sequence number (pubsub.c); a gap in the numbers
 * is what slow=drop made this subscriber miss (ipc_dropped).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "pubsub.h"
#include "pubsub_int.h"
#include "wait.h"

#define RX_START (64u << 10) /* first receive buffer */

struct ps_subend {
	ipc_channel *c;
	int text; /* framing=line */
	unsigned char *rbuf;
	size_t rcap, plen;
	int pending, started;
	uint64_t expect;
	_Atomic unsigned long long dropped;
};

/* 0, or -1 when p is not a sequence number. */
static int
seq_get(const unsigned char *p, int text, uint64_t *seq)
{
	*seq = 0;
	for (int i = 0; i < SEQ_BIN && !text; i++) {
		*seq |= (uint64_t)p[i] << (8 * i);
	}
	for (int i = 0; i < 16 && text; i++) {
		int c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		                               : -1;
		if (d < 0) {
			return -1;
		}
		*seq = *seq << 4 | (uint64_t)d;
	}
	return text && p[16] != ' ' ? -1 : 0;
}

/* Take the next message of the channel underneath into rbuf (pending),
 * counting the sequence numbers it skipped.  0 or a negative errno. */
static int
subend_fetch(ipc_channel *ch)
{
	struct ps_subend *s = ipc__priv(ch);
	ssize_t r;

	for (;;) {
		r = ipc_recv(s->c, s->rbuf, s->rcap, IPC_NONBLOCK);
		if (r != -EMSGSIZE || s->rcap >= s->c->max_msg) {
			break;
		}
		size_t n = s->rcap * 4 < s->c->max_msg ? s->rcap * 4
		                                       : s->c->max_msg;
		unsigned char *b = realloc(s->rbuf, n);
		if (b == NULL) {
			return ipc__err(-ENOMEM, ch->uri,
			                "recv: out of memory");
		}
		s->rbuf = b;
		s->rcap = n;
	}
	if (r == -ECONNRESET) {
		/* The publisher went before the connection was
		 * set up (a TLS handshake): it is gone all the
		 * same. */
		return ipc__err(-EPIPE, ch->uri, "recv: the publisher closed");
	}
	if (r < 0) {
		return r;
	}
	uint64_t seq;
	if ((size_t)r < ipc__pubsub_seq_len(s->text) ||
	    seq_get(s->rbuf, s->text, &seq)) {
		return ipc__err(-EPROTO, ch->uri,
		                "recv: the publisher sent %zd bytes without "
		                "a sequence number first",
		                r);
	}
	if (s->started && seq < s->expect) {
		return ipc__err(-EPROTO, ch->uri,
		                "recv: the publisher's sequence went "
		                "back from %llu to %llu",
		                (unsigned long long)s->expect,
		                (unsigned long long)seq);
	}
	if (s->started && seq > s->expect) {
		atomic_fetch_add_explicit(&s->dropped, seq - s->expect,
		                          memory_order_relaxed);
	}
	s->started = 1;
	s->expect = seq + 1;
	s->plen = (size_t)r - ipc__pubsub_seq_len(s->text);
	s->pending = 1;
	return 0;
}

static ssize_t
subend_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct ps_subend *s = ipc__priv(ch);

	if (!s->pending) {
		int r = subend_fetch(ch);
		if (r < 0) {
			return r;
		}
	}
	if (s->plen > cap) {
		return ipc__err_msgsize(ch->uri, s->plen, cap);
	}
	if (s->plen > 0) {
		memcpy(buf, s->rbuf + ipc__pubsub_seq_len(s->text), s->plen);
	}
	s->pending = 0;
	return (ssize_t)s->plen;
}

static ssize_t
subend_send(ipc_channel *ch, const void *buf, size_t len)
{
	(void)buf;
	(void)len;
	/* The core refuses ipc_send on a subscriber before this. */
	return ipc__err(-EOPNOTSUPP, ch->uri, "send: this end subscribes");
}

static int
subend_pollfds(ipc_channel *ch, short events, struct pollfd *pfd,
               int *retry_ms)
{
	struct ps_subend *s = ipc__priv(ch);
	return s->c->drv->pollfds(s->c, events, pfd, retry_ms);
}

static short
subend_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct ps_subend *s = ipc__priv(ch);
	short r = s->pending ? IPC_POLLIN : 0;

	if (s->c->drv->ready != NULL) {
		r |= s->c->drv->ready(s->c, events, pfd, npfd);
	} else if (pfd != NULL) {
		r |= ipc__map_revents(pfd, npfd);
	}
	return r;
}

static int
subend_fd(const ipc_channel *ch)
{
	const struct ps_subend *s = ipc__cpriv(ch);
	return ipc_fd(s->c);
}

static int
subend_close(ipc_channel *ch)
{
	struct ps_subend *s = ipc__priv(ch);
	int r = ipc_close(s->c);

	free(s->rbuf);
	return r;
}

static unsigned long long
subend_dropped(const ipc_channel *ch)
{
	const struct ps_subend *s = ipc__cpriv(ch);
	return atomic_load_explicit(&s->dropped, memory_order_relaxed);
}

static char *
subend_local_uri(const ipc_channel *ch)
{
	const struct ps_subend *s = ipc__cpriv(ch);
	return ipc__pubsub_dup_uri(ch, ipc_local_uri(s->c));
}

static int
subend_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	const struct ps_subend *s = ipc__cpriv(ch);
	return ipc_peer_cred(s->c, pid, uid, gid);
}

int
ipc__pubsub_sub_open(ipc_channel *ch, const char *inner, int flags, int text)
{
	struct ps_subend *s = ipc__priv(ch);
	int r;

	s->text = text;
	r = ipc_open(&s->c, inner, flags & IPC_NONBLOCK);

	if (r < 0) {
		return r;
	}
	s->rcap = s->c->max_msg < RX_START ? s->c->max_msg : RX_START;
	s->rbuf = malloc(s->rcap);
	if (s->rbuf == NULL || s->c->max_msg <= ipc__pubsub_seq_len(s->text)) {
		ipc_close(s->c);
		free(s->rbuf);
		return ipc__err(
		        s->rbuf ? -EINVAL : -ENOMEM, ch->uri, "open: %s",
		        s->rbuf ? "maxmsg too small" : "out of memory");
	}
	ch->max_msg = s->c->max_msg - ipc__pubsub_seq_len(s->text);
	ch->caps = s->c->caps;
	/* One step now: a connection that needs a first word from this
	 * side (a TLS ClientHello) gets it even if the caller only waits
	 * on ipc_fd().  Errors come back at the first ipc_recv. */
	(void)subend_fetch(ch);
	return 0;
}

const struct ipc_driver ipc__pubsub_sub = {
        .scheme = "subscriber",
        .priv_size = sizeof(struct ps_subend),
        .send = subend_send,
        .recv = subend_recv,
        .close = subend_close,
        .pollfds = subend_pollfds,
        .ready = subend_ready,
        .fd = subend_fd,
        .local_uri = subend_local_uri,
        .peer_cred = subend_peer_cred,
        .dropped = subend_dropped,
};
