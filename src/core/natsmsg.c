/*
 * The message layer of nats://: numbering, fragments and the JetStream
 * send window (see natsmsg.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "natsmsg.h"

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------ sending -- */

int
ipc__nats_tx_init(struct ipc_nats_tx *t, size_t window)
{
	t->window = window;
	t->base = t->next = 1;
	t->ring = calloc(window, sizeof(*t->ring));
	return t->ring != NULL ? 0 : -ENOMEM;
}

int
ipc__nats_tx_unit(struct ipc_nats_tx *t, size_t unit)
{
	t->unit = unit;
	t->fcap = unit + IPC_FRAG_HDR;
	t->fbuf = malloc(t->fcap);
	return t->fbuf != NULL ? 0 : -ENOMEM;
}

void
ipc__nats_tx_fini(struct ipc_nats_tx *t)
{
	ipc__frag_tx_fini(&t->ftx);
	free(t->fbuf);
	t->fbuf = NULL;
	if (t->ring != NULL) {
		for (size_t i = 0; i < t->window; i++) {
			natsMsg_Destroy(t->ring[i].m);
		}
	}
	free(t->ring);
	t->ring = NULL;
}

/* Publish (again) one message of the window. */
static void
tx_send(struct ipc_nats_tx *t, struct ipc_nats_txent *e)
{
	natsStatus s = natsConnection_PublishMsg(t->nc, e->m);
	e->due = now_ms() + (s == NATS_OK ? t->resend_ms : 100);
}

int
ipc__nats_tx_publish(struct ipc_nats_tx *t, const void *buf, size_t len,
                     const char *frag)
{
	char num[32], reply[128];
	uint64_t seq = t->next;
	natsMsg *m;

	snprintf(num, sizeof(num), "%" PRIu64, seq);
	snprintf(reply, sizeof(reply), "%s.%" PRIu64, t->ackpfx, seq);
	m = ipc__nats_msg(t->subj, t->use_js ? reply : NULL, buf, len);
	if (m == NULL) {
		return ipc__err(-ENOMEM, t->uri, "out of memory");
	}
	natsMsgHeader_Set(m, "Ipc-Id", t->id);
	natsMsgHeader_Set(m, "Ipc-Seq", num);
	if (frag != NULL) {
		natsMsgHeader_Set(m, "Ipc-Frag", frag);
	}
	if (t->use_js) {
		char mid[64];
		snprintf(mid, sizeof(mid), "%s-%" PRIu64, t->id, seq);
		natsMsgHeader_Set(m, "Nats-Msg-Id", mid);
		struct ipc_nats_txent *e = &t->ring[seq % t->window];
		e->m = m;
		e->acked = 0;
		tx_send(t, e); /* a failure is retried by the resends */
		t->next++;
		return 0;
	}
	natsStatus s = natsConnection_PublishMsg(t->nc, m);
	natsMsg_Destroy(m);
	if (s == NATS_INSUFFICIENT_BUFFER) {
		return -EAGAIN;
	}
	if (s != NATS_OK) {
		return ipc__nats_err(-EIO, t->uri, "publish", s);
	}
	t->next++;
	return 0;
}

int
ipc__nats_tx_frags(struct ipc_nats_tx *t, int (*ready)(void *), void *arg)
{
	while (ready(arg)) {
		char fr[48];
		size_t off = t->ftx.off;
		size_t n = ipc__frag_tx_next(&t->ftx, t->fbuf, t->fcap);
		snprintf(fr, sizeof(fr), "%zu/%zu", off, t->ftx.len);
		int r = ipc__nats_tx_publish(t, t->fbuf + IPC_FRAG_HDR,
		                             n - IPC_FRAG_HDR, fr);
		if (r == -EAGAIN) {
			return 0;
		}
		if (r < 0) {
			ipc__frag_tx_done(&t->ftx);
			return r;
		}
		if (ipc__frag_tx_sent(&t->ftx, n)) {
			ipc__frag_tx_done(&t->ftx);
			return 1;
		}
	}
	return 0;
}

void
ipc__nats_tx_resend(struct ipc_nats_tx *t)
{
	int64_t now = now_ms();

	for (uint64_t s = t->base; s < t->next; s++) {
		struct ipc_nats_txent *e = &t->ring[s % t->window];
		if (!e->acked && e->due <= now) {
			tx_send(t, e);
		}
	}
}

int
ipc__nats_ack_parse(const char *ackpfx, natsMsg *m, uint64_t *seq, int *ok)
{
	const char *subj = natsMsg_GetSubject(m);
	const char *d = natsMsg_GetData(m);
	size_t dl = (size_t)natsMsg_GetDataLength(m);
	size_t pl = strlen(ackpfx);
	char *end;

	*ok = d != NULL && memmem(d, dl, "\"seq\"", 5) != NULL &&
	      memmem(d, dl, "\"error\"", 7) == NULL;
	if (strncmp(subj, ackpfx, pl) != 0 || subj[pl] != '.') {
		return 0;
	}
	*seq = strtoull(subj + pl + 1, &end, 10);
	return *end == '\0';
}

int
ipc__nats_tx_acked(struct ipc_nats_tx *t, uint64_t seq, int ok)
{
	if (seq < t->base || seq >= t->next) {
		return -1;
	}
	struct ipc_nats_txent *e = &t->ring[seq % t->window];
	if (ok) {
		e->acked = 1;
	} else if (!e->acked) {
		/* refused: the stream is full (the peer has not read window=
		 * messages yet), or it has no leader just now */
		e->due = now_ms() + 100;
	}
	while (t->base < t->next && t->ring[t->base % t->window].acked) {
		struct ipc_nats_txent *b = &t->ring[t->base % t->window];
		natsMsg_Destroy(b->m);
		*b = (struct ipc_nats_txent){0};
		t->base++;
	}
	return t->base == t->next;
}

/* ---------------------------------------------------- receiving -- */

/* "OFFSET/TOTAL", both decimal. */
static int
parse_frag(const char *v, uint64_t *off, uint64_t *total)
{
	char *end;

	if (v == NULL || *v < '0' || *v > '9') {
		return 0;
	}
	errno = 0;
	*off = strtoull(v, &end, 10);
	if (*end != '/' || end[1] < '0' || end[1] > '9') {
		return 0;
	}
	*total = strtoull(end + 1, &end, 10);
	return *end == '\0' && errno == 0;
}

/* Feed the fragment m (header value fr) to the reassembly, as a frag.h
 * unit.  IPC_FRAG_NEED, IPC_FRAG_WHOLE or a recorded error. */
static int
feed_frag(struct ipc_nats_rx *x, natsMsg *m, const char *fr)
{
	size_t n = (size_t)natsMsg_GetDataLength(m);
	uint64_t off, total;
	uint32_t arg;

	if (!parse_frag(fr, &off, &total) || total > x->max_msg ||
	    off >= total || n > total - off || n == 0) {
		return ipc__err(-EPROTO, x->uri,
		                "bad fragment header "
		                "Ipc-Frag: %.40s (%zu bytes)",
		                fr ? fr : "", n);
	}
	if (x->rcap < n + IPC_FRAG_HDR) {
		unsigned char *v = realloc(x->rbuf, n + IPC_FRAG_HDR);
		if (v == NULL) {
			return ipc__err(-ENOMEM, x->uri, "out of memory");
		}
		x->rbuf = v;
		x->rcap = n + IPC_FRAG_HDR;
	}
	ipc__frag_hdr(x->rbuf, off == 0 ? IPC_FRAG_DATA : IPC_FRAG_MORE,
	              (uint32_t)total, (uint32_t)off);
	memcpy(x->rbuf + IPC_FRAG_HDR, natsMsg_GetData(m), n);
	return ipc__frag_rx_feed(&x->frx, x->rbuf, n + IPC_FRAG_HDR,
	                         x->max_msg, &arg, x->uri);
}

ssize_t
ipc__nats_rx_take(struct ipc_nats_rx *x, struct ipc_nats_rxq *q, void *buf,
                  size_t cap, void (*taken)(void *, natsMsg *), void *arg)
{
	natsMsg *m;

	while (!x->frx.ready && (m = ipc__nats_rxq_peek(q)) != NULL) {
		const char *fr = ipc__nats_hdr(m, "Ipc-Frag");
		if (fr == NULL && !x->frx.partial) {
			size_t n = (size_t)natsMsg_GetDataLength(m);
			if (n > cap) {
				return ipc__err_msgsize(x->uri, n, cap);
			}
			if (n > 0) {
				memcpy(buf, natsMsg_GetData(m), n);
			}
			ipc__nats_rxq_pop(q);
			taken(arg, m);
			natsMsg_Destroy(m);
			return (ssize_t)n;
		}
		int k = fr != NULL ? feed_frag(x, m, fr)
		                   : ipc__err(-EPROTO, x->uri,
		                              "a message inside a fragmented "
		                              "one");
		if (k < 0 && !x->use_js) {
			/* core NATS lost a fragment: the message is lost */
			ipc__frag_rx_drop(&x->frx);
			if (fr == NULL) {
				continue; /* m is delivered as it is */
			}
			k = feed_frag(x, m, fr); /* it may start the next */
			if (k < 0) {
				ipc__frag_rx_drop(&x->frx);
				k = IPC_FRAG_NEED;
			}
		}
		ipc__nats_rxq_pop(q);
		taken(arg, m);
		natsMsg_Destroy(m);
		if (k < 0) {
			ipc__frag_rx_drop(&x->frx);
			return k;
		}
	}
	if (x->frx.ready) {
		return ipc__frag_rx_take(&x->frx, buf, cap, x->uri);
	}
	return -EAGAIN;
}

void
ipc__nats_rx_fini(struct ipc_nats_rx *x)
{
	ipc__frag_rx_fini(&x->frx);
	free(x->rbuf);
	x->rbuf = NULL;
}
