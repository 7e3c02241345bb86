/*
 * The message layer of nats:// (src/backends/nats.c): how one direction's
 * libipc messages become NATS messages and back.  Outgoing: the Ipc-Seq
 * numbering, Ipc-Frag fragments for a message longer than a NATS message
 * may be, and in JetStream mode the window of published messages waiting
 * for their PubAck, published again when refused or overdue.  Incoming:
 * reassembly of fragments off the in-order queue (natsjs.h).  No locking:
 * the caller holds its channel's mutex.  Built only with the nats feature.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_NATSMSG_H
#define IPC_CORE_NATSMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <nats/nats.h>

#include "frag.h"
#include "natsjs.h"

struct ipc_nats_txent {
	natsMsg *m;
	int64_t due; /* when to publish it again unless acked */
	int acked;
};

struct ipc_nats_tx {
	/* set by the caller once connected; the strings stay the caller's */
	natsConnection *nc;
	const char *uri, *subj, *ackpfx, *id;
	int use_js, resend_ms;
	/* JetStream: Ipc-Seqs [base, next) are in flight, in ring[seq %
	 * window]; core NATS: next alone numbers the messages. */
	struct ipc_nats_txent *ring;
	size_t window;
	uint64_t base, next;
	/* Messages longer than unit go as fragments, one NATS message each
	 * with the header Ipc-Frag: OFFSET/TOTAL. */
	size_t unit;
	struct ipc_frag_tx ftx;
	unsigned char *fbuf; /* one unit and its frag.h header */
	size_t fcap;
};

/* The window's ring (window entries), base = next = 1.  0 or -ENOMEM. */
int ipc__nats_tx_init(struct ipc_nats_tx *t, size_t window);
/* The fragment size (the server's max_payload less room for headers).
 * 0 or -ENOMEM. */
int ipc__nats_tx_unit(struct ipc_nats_tx *t, size_t unit);
void ipc__nats_tx_fini(struct ipc_nats_tx *t);

/* Publish one NATS message with the next Ipc-Seq (frag: the Ipc-Frag
 * header or NULL); JetStream keeps it in the window (the caller checked
 * there is room).  0, -EAGAIN (core NATS: libnats's buffer is full) or a
 * recorded error. */
int ipc__nats_tx_publish(struct ipc_nats_tx *t, const void *buf, size_t len,
                         const char *frag);
/* Send fragments of the message in progress (t->ftx) while ready(arg)
 * says the window allows.  1: all out; 0: the window is full; <0: an
 * error. */
int ipc__nats_tx_frags(struct ipc_nats_tx *t, int (*ready)(void *), void *arg);
/* JetStream: publish again what was refused or not acked in time, in
 * order; the stream drops copies it has (Nats-Msg-Id) and the receiver
 * orders. */
void ipc__nats_tx_resend(struct ipc_nats_tx *t);
/* A PubAck m that came on ackpfx.SEQ: 1 with *seq and *ok (stored, not
 * an error) when the subject is of that form, else 0.  No channel state:
 * call it without the lock. */
int ipc__nats_ack_parse(const char *ackpfx, natsMsg *m, uint64_t *seq,
                        int *ok);
/* Apply the PubAck of seq: -1 when seq is not in flight, else 1 when the
 * window is now empty, 0 when not. */
int ipc__nats_tx_acked(struct ipc_nats_tx *t, uint64_t seq, int ok);

struct ipc_nats_rx {
	const char *uri;
	int use_js; /* 0: a lost fragment loses its message, not the channel */
	size_t max_msg;
	struct ipc_frag_rx frx;
	unsigned char *rbuf; /* a received fragment as a frag.h unit */
	size_t rcap;
};

/* The next whole message off q into buf: its length, -EAGAIN when none
 * is whole yet, or a recorded error.  Each NATS message taken off q is
 * passed to taken(arg, m) before it is destroyed. */
ssize_t ipc__nats_rx_take(struct ipc_nats_rx *x, struct ipc_nats_rxq *q,
                          void *buf, size_t cap,
                          void (*taken)(void *, natsMsg *), void *arg);
void ipc__nats_rx_fini(struct ipc_nats_rx *x);

#endif
