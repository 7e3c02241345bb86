/*
 * The signal:// wire format and its reassembler.  See sigwire.h.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "sigwire.h"

uint64_t
ipc__sw_hdr(unsigned kind, unsigned nwords, unsigned seq, uint32_t arg)
{
	return (uint64_t)IPC_SW_MAGIC | (uint64_t)(kind & 0xf) << 8 |
	       (uint64_t)(nwords & 0xff) << 12 |
	       (uint64_t)(seq & 0xfff) << 20 | (uint64_t)arg << 32;
}

int
ipc__sw_parse(uint64_t w, struct ipc_sw_hdr *h)
{
	h->kind = (unsigned)(w >> 8) & 0xf;
	h->nwords = (unsigned)(w >> 12) & 0xff;
	h->seq = (unsigned)(w >> 20) & 0xfff;
	h->arg = (uint32_t)(w >> 32);
	return (w & 0xff) == IPC_SW_MAGIC;
}

size_t
ipc__sw_words(size_t len)
{
	return (len + IPC_SW_WORD - 1) / IPC_SW_WORD;
}

static int
proto(const char *uri, const char *what)
{
	return ipc__err(-EPROTO, uri, "peer broke the signal protocol: %s",
	                what);
}

static void
queue(struct ipc_sw_rx *rx, struct ipc_sw_out *out)
{
	struct ipc_sw_msg *m = rx->cur;

	m->next = NULL;
	m->sigs = rx->sigs;
	if (rx->tail != NULL) {
		rx->tail->next = m;
	} else {
		rx->head = m;
	}
	rx->tail = m;
	rx->cur = NULL;
	rx->sigs = 0;
	out->whole = 1;
}

static int
on_header(struct ipc_sw_rx *rx, uint64_t w, struct ipc_sw_out *out,
          const char *uri)
{
	struct ipc_sw_hdr h;

	if (!ipc__sw_parse(w, &h)) {
		return proto(uri, "a header without the magic byte");
	}
	if (h.seq != (rx->seq & 0xfff)) {
		return proto(uri, "a chunk out of sequence (lost or forged)");
	}
	rx->seq++;
	if (h.nwords > IPC_SW_CHUNK_MAX) {
		return proto(uri, "a chunk longer than 32 values");
	}
	switch (h.kind) {
	case IPC_SW_DATA:
		if (rx->cur != NULL) {
			return proto(uri, "a new message inside another");
		}
		if (h.arg > rx->max_msg) {
			return proto(uri, "a message longer than maxmsg");
		}
		if (h.nwords > ipc__sw_words(h.arg) ||
		    (h.arg > 0 && h.nwords == 0)) {
			return proto(uri, "a chunk that does not fit its "
			                  "message");
		}
		rx->cur = malloc(sizeof *rx->cur + (h.arg ? h.arg : 1));
		if (rx->cur == NULL) {
			return ipc__err(-ENOMEM, uri,
			                "no memory for a %" PRIu32
			                "-byte message",
			                h.arg);
		}
		rx->cur->len = h.arg;
		rx->have = 0;
		rx->sigs = 1;
		rx->words = h.nwords;
		rx->consumed++;
		if (h.arg == 0) {
			queue(rx, out);
		}
		return 0;
	case IPC_SW_MORE:
		if (rx->cur == NULL || h.arg != rx->cur->len ||
		    h.nwords == 0 ||
		    h.nwords > ipc__sw_words(rx->cur->len - rx->have)) {
			return proto(uri, "a stray continuation");
		}
		rx->words = h.nwords;
		rx->sigs++;
		rx->consumed++;
		return 0;
	case IPC_SW_CREDIT:
		if (h.nwords != 0) {
			return proto(uri, "credit with values");
		}
		out->credit = h.arg;
		return 0;
	case IPC_SW_CLOSE:
		out->close = 1;
		return 0;
	default:
		return proto(uri, "an unexpected chunk kind");
	}
}

static void
on_word(struct ipc_sw_rx *rx, uint64_t w, struct ipc_sw_out *out)
{
	size_t left = rx->cur->len - rx->have;
	size_t k = left < IPC_SW_WORD ? left : IPC_SW_WORD;

	memcpy(rx->cur->data + rx->have, &w, k);
	rx->have += k;
	rx->words--;
	rx->sigs++;
	rx->consumed++;
	if (rx->have == rx->cur->len) {
		/* The header checks keep words within the message: the
		 * chunk ends here too. */
		queue(rx, out);
	} else if (rx->words == 0) {
		/* The chunk ended mid-message: its signals go back now. */
		out->owed = rx->sigs;
		rx->sigs = 0;
	}
}

int
ipc__sw_rx_feed(struct ipc_sw_rx *rx, uint64_t w, struct ipc_sw_out *out,
                const char *uri)
{
	memset(out, 0, sizeof *out);
	if (rx->words > 0 && rx->cur != NULL) {
		on_word(rx, w, out);
		return 0;
	}
	return on_header(rx, w, out, uri);
}

ssize_t
ipc__sw_rx_take(struct ipc_sw_rx *rx, void *buf, size_t cap, unsigned *sigs,
                const char *uri)
{
	struct ipc_sw_msg *m = rx->head;

	*sigs = 0;
	if (m == NULL) {
		return -EAGAIN;
	}
	if (m->len > cap) {
		return ipc__err_msgsize(uri, m->len, cap);
	}
	if (m->len > 0) {
		memcpy(buf, m->data, m->len);
	}
	rx->head = m->next;
	if (rx->head == NULL) {
		rx->tail = NULL;
	}
	*sigs = m->sigs;
	size_t len = m->len;
	free(m);
	return (ssize_t)len;
}

void
ipc__sw_rx_fini(struct ipc_sw_rx *rx)
{
	struct ipc_sw_msg *m = rx->head;

	while (m != NULL) {
		struct ipc_sw_msg *n = m->next;
		free(m);
		m = n;
	}
	free(rx->cur);
	memset(rx, 0, sizeof *rx);
}
