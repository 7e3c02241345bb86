/*
 * Fragmentation and in-order reassembly for message-queue drivers.  See
 * frag.h for the unit format.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "frag.h"

#define FRAG_MAGIC   0x4950u
#define FRAG_VERSION 1u
#define RX_KEEP      ((size_t)1 << 20) /* free a larger buffer after use */

static void
put_hdr(unsigned char *out, unsigned kind, uint32_t a, uint32_t b)
{
	uint16_t magic = FRAG_MAGIC;

	memcpy(out, &magic, 2);
	out[2] = (unsigned char)kind;
	out[3] = FRAG_VERSION;
	memcpy(out + 4, &a, 4);
	memcpy(out + 8, &b, 4);
}

size_t
ipc__frag_hdr(unsigned char *out, enum ipc_frag_kind kind, uint32_t a,
              uint32_t b)
{
	put_hdr(out, (unsigned)kind, a, b);
	return IPC_FRAG_HDR;
}

size_t
ipc__frag_ctl(unsigned char *out, enum ipc_frag_kind kind, uint32_t arg)
{
	put_hdr(out, (unsigned)kind, arg, 0);
	return IPC_FRAG_HDR;
}

/* ------------------------------------------------------------ sending -- */

void
ipc__frag_tx_start(struct ipc_frag_tx *t, const void *msg, size_t len)
{
	t->src = msg;
	t->len = len;
	t->off = 0;
	t->active = 1;
	t->detached = 0;
}

int
ipc__frag_tx_same(const struct ipc_frag_tx *t, const void *msg, size_t len)
{
	return t->active && !t->detached && t->src == msg && t->len == len;
}

int
ipc__frag_tx_detach(struct ipc_frag_tx *t)
{
	size_t rest;

	if (!t->active || t->detached) {
		return 0;
	}
	rest = t->len - t->off;
	if (t->copy_cap < rest || t->copy == NULL) {
		unsigned char *n = realloc(t->copy, rest ? rest : 1);
		if (n == NULL) {
			return -ENOMEM;
		}
		t->copy = n;
		t->copy_cap = rest ? rest : 1;
	}
	if (rest > 0) {
		memcpy(t->copy, t->src + t->off, rest);
	}
	t->coff = t->off;
	t->src = NULL;
	t->detached = 1;
	return 0;
}

size_t
ipc__frag_tx_next(const struct ipc_frag_tx *t, unsigned char *out, size_t unit)
{
	size_t room = unit - IPC_FRAG_HDR;
	size_t n = t->len - t->off < room ? t->len - t->off : room;
	const unsigned char *from =
	        t->detached ? t->copy + (t->off - t->coff) : t->src + t->off;

	put_hdr(out, t->off == 0 ? IPC_FRAG_DATA : IPC_FRAG_MORE,
	        (uint32_t)t->len, (uint32_t)t->off);
	if (n > 0) {
		memcpy(out + IPC_FRAG_HDR, from, n);
	}
	return IPC_FRAG_HDR + n;
}

int
ipc__frag_tx_sent(struct ipc_frag_tx *t, size_t n)
{
	t->off += n - IPC_FRAG_HDR;
	return t->off >= t->len;
}

void
ipc__frag_tx_done(struct ipc_frag_tx *t)
{
	t->active = 0;
	t->detached = 0;
	t->src = NULL;
	if (t->copy_cap > RX_KEEP) {
		free(t->copy);
		t->copy = NULL;
		t->copy_cap = 0;
	}
}

void
ipc__frag_tx_fini(struct ipc_frag_tx *t)
{
	free(t->copy);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------- receiving -- */

static int
proto(const char *uri, const char *what)
{
	return ipc__err(-EPROTO, uri, "peer broke the fragment protocol: %s",
	                what);
}

static int
rx_grow(struct ipc_frag_rx *rx, size_t need, const char *uri)
{
	if (rx->cap >= need && rx->buf != NULL) {
		return 0;
	}
	unsigned char *n = realloc(rx->buf, need ? need : 1);
	if (n == NULL) {
		return ipc__err(-ENOMEM, uri,
		                "no memory to reassemble a message of %zu "
		                "bytes",
		                need);
	}
	rx->buf = n;
	rx->cap = need ? need : 1;
	return 0;
}

int
ipc__frag_rx_feed(struct ipc_frag_rx *rx, const unsigned char *p, size_t n,
                  size_t max_msg, uint32_t *arg, const char *uri)
{
	uint16_t magic;
	uint32_t a, b;
	size_t len;

	if (n < IPC_FRAG_HDR) {
		return proto(uri, "unit shorter than its header");
	}
	memcpy(&magic, p, 2);
	memcpy(&a, p + 4, 4);
	memcpy(&b, p + 8, 4);
	if (magic != FRAG_MAGIC || p[3] != FRAG_VERSION) {
		return proto(uri, "bad magic or version");
	}
	len = n - IPC_FRAG_HDR;
	switch (p[2]) {
	case IPC_FRAG_HELLO:
		if (rx->partial || len != 0) {
			return proto(uri, "hello inside a message");
		}
		*arg = a;
		return IPC_FRAG_HELLO;
	case IPC_FRAG_CLOSE:
		ipc__frag_rx_drop(rx);
		return IPC_FRAG_CLOSE;
	case IPC_FRAG_DATA:
		if (rx->partial) {
			return proto(uri, "new message before the last ended");
		}
		if (a > max_msg) {
			return proto(uri, "message larger than the maximum");
		}
		if (b != 0 || len > a) {
			return proto(uri,
			             "first fragment longer than message");
		}
		if (len == a) {
			rx->msg = p + IPC_FRAG_HDR;
			rx->msg_len = len;
			rx->ready = 1;
			return IPC_FRAG_WHOLE;
		}
		if (len == 0) {
			return proto(uri, "empty first fragment");
		}
		if (rx_grow(rx, a, uri) < 0) {
			return -ENOMEM;
		}
		memcpy(rx->buf, p + IPC_FRAG_HDR, len);
		rx->total = a;
		rx->have = len;
		rx->partial = 1;
		return IPC_FRAG_NEED;
	case IPC_FRAG_MORE:
		if (!rx->partial || a != rx->total || b != rx->have) {
			return proto(uri, "fragment out of order");
		}
		if (len == 0 || len > rx->total - rx->have) {
			return proto(uri, "fragment of a wrong length");
		}
		memcpy(rx->buf + rx->have, p + IPC_FRAG_HDR, len);
		rx->have += len;
		if (rx->have < rx->total) {
			return IPC_FRAG_NEED;
		}
		rx->partial = 0;
		rx->msg = rx->buf;
		rx->msg_len = rx->total;
		rx->ready = 1;
		return IPC_FRAG_WHOLE;
	default:
		return proto(uri, "unknown unit kind");
	}
}

ssize_t
ipc__frag_rx_take(struct ipc_frag_rx *rx, void *buf, size_t cap,
                  const char *uri)
{
	size_t len = rx->msg_len;

	if (cap < len) {
		return ipc__err_msgsize(uri, len, cap);
	}
	if (len > 0) {
		memcpy(buf, rx->msg, len);
	}
	rx->ready = 0;
	rx->msg = NULL;
	rx->msg_len = 0;
	if (rx->cap > RX_KEEP) {
		free(rx->buf);
		rx->buf = NULL;
		rx->cap = 0;
	}
	return (ssize_t)len;
}

void
ipc__frag_rx_drop(struct ipc_frag_rx *rx)
{
	rx->partial = 0;
	rx->total = 0;
	rx->have = 0;
}

void
ipc__frag_rx_fini(struct ipc_frag_rx *rx)
{
	free(rx->buf);
	memset(rx, 0, sizeof(*rx));
}
