/*
 * The message-queue channel that mq:// and sysvmq:// share: messages cut
 * into the units of core/frag.h, a hello and a close record among the
 * units, and a peer that is up, or gone by its close record or by its
 * death.  The driver moves single units through the ops below; the
 * rest (reassembly, fragmenting sends, detached sends, the close-time
 * flush, and the texts of -EPIPE) is here once.
 *
 * Locks: rx_mu guards the receive side (rbuf, fr, reof, rdied, rerr),
 * tx_mu the send side (tbuf, ft, werr).  The driver's ops run with the
 * matching lock held.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_QUEUE_H
#define IPC_CORE_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "driver.h"
#include "frag.h"
#include "trust.h"

enum { IPC_Q_NONE, IPC_Q_UP, IPC_Q_GONE };

struct ipc_queue;

struct ipc_queue_ops {
	/* Receive one unit into q->rbuf (at most q->rx_unit bytes): its
	 * length, -EAGAIN when none is queued, -EPIPE when the queue itself
	 * is gone (the peer removed it on close), or an error whose text is
	 * recorded.  rx_mu held. */
	ssize_t (*recv_unit)(struct ipc_queue *q);
	/* Send the n bytes at q->tbuf as one unit: 0, -EAGAIN (no room),
	 * -EPIPE (the peer is gone), or an error whose text is recorded.
	 * tx_mu held. */
	int (*send_unit)(struct ipc_queue *q, size_t n);
	/* Has the peer closed or died?  Sticky once true: sets IPC_Q_GONE.
	 * thorough: also ask what costs a system call more. */
	int (*gone)(struct ipc_queue *q, int thorough);
	/* A HELLO unit carrying arg: 0 to go on, or an error with its text.
	 * NULL: a hello after the rendezvous is a protocol error. */
	int (*hello)(struct ipc_queue *q, uint32_t arg);
	/* At close: wait for room for the next unit, up to dl (NULL: a
	 * driver-chosen slice).  Returns 0 or -ETIMEDOUT. */
	int (*wait_room)(struct ipc_queue *q, const struct timespec *dl);
};

struct ipc_queue {
	const struct ipc_queue_ops *ops;
	const char *uri;
	pid_t owner;      /* the process that opened the channel */
	size_t max_msg;   /* largest message */
	_Atomic int peer; /* IPC_Q_*; pidfd and cred set before UP */
	int pidfd;        /* the peer's, or -1 */
	pid_t peer_pid;   /* 0 when unknown */
	struct ipc_trust trust;
	struct ipc_cred cred; /* the peer's */

	pthread_mutex_t rx_mu;       /* receive side */
	unsigned char *rbase, *rbuf; /* one unit, after head bytes */
	size_t rx_unit;
	struct ipc_frag_rx fr;
	int reof;                /* the peer is gone and all was delivered */
	enum ipc_peer_end rdied; /* ... and how it went */
	int rerr;                /* sticky error */

	pthread_mutex_t tx_mu; /* send side */
	unsigned char *tbase, *tbuf;
	size_t tx_unit;
	struct ipc_frag_tx ft;
	_Atomic int tx_detached;
	int werr;
};

void ipc__queue_init(struct ipc_queue *q, const struct ipc_queue_ops *ops,
                     const char *uri, size_t max_msg);
/* Close the pidfd, free the buffers, destroy the locks. */
void ipc__queue_fini(struct ipc_queue *q);
/* One unit of rx_unit and one of tx_unit bytes, each after head bytes
 * that the driver may use (a System V message type). */
int ipc__queue_bufs(struct ipc_queue *q, size_t rx_unit, size_t tx_unit,
                    size_t head);
/* The peer arrived: open its pidfd, add it to epfd (when >= 0), then
 * mark the peer up. */
void ipc__queue_peer_up(struct ipc_queue *q, pid_t pid, int epfd);

/* Receive side, rx_mu held.  Read units until a message is whole:
 * IPC_FRAG_WHOLE, -EAGAIN, -EPIPE (the close record, or the queue gone)
 * or an error. */
int ipc__queue_pump(struct ipc_queue *q);
/* A whole message, -EAGAIN, -EPIPE once the peer is gone and drained,
 * or the sticky error.  gone_hint: the caller saw the peer die. */
int ipc__queue_rx_step(struct ipc_queue *q, int gone_hint);
/* The recv slot: lock, step, take; -EPIPE says closed or died. */
ssize_t ipc__queue_recv(struct ipc_queue *q, void *buf, size_t cap);

/* Send side.  tx_locked: tx_mu held. */
ssize_t ipc__queue_tx_locked(struct ipc_queue *q, const void *buf, size_t len);
int ipc__queue_detach(struct ipc_queue *q);
/* Finish a detached message for a caller who is receiving or polling. */
void ipc__queue_kick(struct ipc_queue *q);
/* At close: push a detached message while the peer lives, up to
 * timeout_ms (-1: forever). */
int ipc__queue_flush(struct ipc_queue *q, int timeout_ms);
/* At close: the close record, if the peer is up and has room for it. */
void ipc__queue_close_record(struct ipc_queue *q);

/* How the peer went, for an -EPIPE now. */
enum ipc_peer_end ipc__queue_end(struct ipc_queue *q);

#endif /* IPC_CORE_QUEUE_H */
