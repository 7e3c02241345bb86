/*
 * Fragmentation of messages over transports whose per-message limit is
 * smaller than a libipc message (POSIX and System V message queues).
 *
 * Every unit the transport carries starts with a 12-byte header:
 *   u16 magic 0x4950 ("IP"), u8 kind, u8 version (1),
 *   u32 a, u32 b  (host byte order: both ends are on one machine)
 * kind DATA  first fragment of a message: a = total length, b = 0
 *      MORE  a later fragment:            a = total length, b = offset
 *      HELLO a = the sender's pid, b = 0
 *      CLOSE the sender closed its end; nothing follows
 * A message of total bytes is DATA with the first min(unit - 12, total)
 * bytes, then MORE fragments in order until total bytes were carried.  A
 * zero-length message is one DATA unit of 12 bytes.
 *
 * The receive side reassembles in order and hands out a message only when
 * it is whole; the send side keeps its place in a message that the
 * transport took only part of (see driver.h, -EINPROGRESS and detach).
 * Everything in a received unit is checked: a unit that does not continue
 * the message in progress is a protocol error.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_FRAG_H
#define IPC_CORE_FRAG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IPC_FRAG_HDR 12u

enum ipc_frag_kind {
	IPC_FRAG_DATA = 1,
	IPC_FRAG_MORE = 2,
	IPC_FRAG_HELLO = 3,
	IPC_FRAG_CLOSE = 4,
};

/* Write a unit header (kind, a, b) into out; returns IPC_FRAG_HDR.  For a
 * transport that carries a and b out of band (nats:// headers) and feeds
 * the units it rebuilds to ipc__frag_rx_feed. */
size_t ipc__frag_hdr(unsigned char *out, enum ipc_frag_kind kind, uint32_t a,
                     uint32_t b);
/* Write a control unit (HELLO, CLOSE) into out; returns its length. */
size_t ipc__frag_ctl(unsigned char *out, enum ipc_frag_kind kind,
                     uint32_t arg);

/* ------------------------------------------------------------ sending -- */

/* A message in progress on the send side. */
struct ipc_frag_tx {
	const unsigned char *src; /* the caller's bytes until detached */
	size_t len, off;          /* total length, bytes already sent */
	int active;               /* a message is in progress */
	int detached;             /* the rest is in copy (caller returned) */
	unsigned char *copy;      /* bytes [coff, len) after detach */
	size_t coff, copy_cap;
};

/* Start a message (the caller checked no message is in progress). */
void ipc__frag_tx_start(struct ipc_frag_tx *t, const void *msg, size_t len);
/* Is this call the continuation of the message in progress? */
int ipc__frag_tx_same(const struct ipc_frag_tx *t, const void *msg,
                      size_t len);
/* Write the next fragment of the message in progress into out (unit
 * bytes); returns its length.  ipc__frag_tx_sent() once it went out. */
size_t ipc__frag_tx_next(const struct ipc_frag_tx *t, unsigned char *out,
                         size_t unit);
/* The fragment of length n written by ipc__frag_tx_next went out; returns
 * 1 when the whole message is out. */
int ipc__frag_tx_sent(struct ipc_frag_tx *t, size_t n);
/* Copy the unsent rest out of the caller's buffer.  0 or -ENOMEM. */
int ipc__frag_tx_detach(struct ipc_frag_tx *t);
/* The message is out (or dropped). */
void ipc__frag_tx_done(struct ipc_frag_tx *t);
void ipc__frag_tx_fini(struct ipc_frag_tx *t);

/* ---------------------------------------------------------- receiving -- */

struct ipc_frag_rx {
	unsigned char *buf; /* reassembly buffer */
	size_t cap;
	size_t total, have; /* message in progress */
	int partial;
	/* a whole message waiting to be taken: in buf, or in the unit the
	 * caller fed (which it must keep until ipc__frag_rx_take) */
	const unsigned char *msg;
	size_t msg_len;
	int ready;
};

/* Result of feeding one unit. */
#define IPC_FRAG_NEED  0 /* the message needs more fragments */
#define IPC_FRAG_WHOLE 1 /* a message is ready (rx->ready) */

/*
 * Feed one received unit p[0..n).  Returns IPC_FRAG_NEED, IPC_FRAG_WHOLE,
 * IPC_FRAG_HELLO (with *arg = pid), IPC_FRAG_CLOSE (a partial message is
 * dropped), or -EPROTO / -ENOMEM with ipc_last_error() set.  max_msg bounds
 * the total a peer may announce.  Must not be called while rx->ready.
 */
int ipc__frag_rx_feed(struct ipc_frag_rx *rx, const unsigned char *p, size_t n,
                      size_t max_msg, uint32_t *arg, const char *uri);
/* Copy the ready message out: its length, or -EMSGSIZE (it stays). */
ssize_t ipc__frag_rx_take(struct ipc_frag_rx *rx, void *buf, size_t cap,
                          const char *uri);
/* Drop a partial message (the peer is gone). */
void ipc__frag_rx_drop(struct ipc_frag_rx *rx);
void ipc__frag_rx_fini(struct ipc_frag_rx *rx);

#endif /* IPC_CORE_FRAG_H */
