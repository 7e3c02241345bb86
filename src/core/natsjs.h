/*
 * The NATS side of nats://, over libnats: the address, connecting,
 * headers, JetStream streams and consumers, the in-order receive queue.
 * Built only with the nats feature.  Functions given a URI record
 * "URI: what failed: why" when they fail.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_NATSJS_H
#define IPC_CORE_NATSJS_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "driver.h"

#define IPC_NATS_IDLEN 16 /* hex digits of an end's random id */

/* The options of a nats:// URI. */
extern const struct ipc_optspec ipc__nats_opts[];

/* The checks of a nats:// URI beyond its option table: the SUBJECT,
 * dead= above hb=, password= with user=, no JetStream option with js=0.
 * 0 or -EINVAL recorded. */
int ipc__nats_check(const struct ipc_uri *u, int use_js, int hb_ms,
                    int dead_ms);
/* Record err for uri: "what: libnats's last error (or s's text)". */
int ipc__nats_err(int err, const char *uri, const char *what, natsStatus s);
/* SUBJECT: tokens of [A-Za-z0-9_-] joined by single dots, 1..200 bytes;
 * no wildcards, no "_INBOX" root. */
int ipc__nats_subject_ok(const char *s);
/* Connect to the servers of u (HOST:PORT[,HOST:PORT...]) with the URI's
 * options (reconnect=, user=, password=, token=).  0 or recorded. */
int ipc__nats_connect(natsConnection **nc, const struct ipc_uri *u,
                      int optimeout, natsErrHandler on_error);
/* A header's value, or NULL; a header that is a decimal u64 (1) or not. */
const char *ipc__nats_hdr(natsMsg *m, const char *key);
int ipc__nats_hdr_u64(natsMsg *m, const char *key, uint64_t *out);
/* A new message, or NULL. */
natsMsg *ipc__nats_msg(const char *subj, const char *reply, const void *data,
                       size_t len);
/* IPC_NATS_IDLEN random hex digits and a NUL. */
void ipc__nats_make_id(char *out);
/* The names of a channel's end on SUBJECT: SUBJECT.c2o and .o2c carry
 * the data (tx: ours, rx: the peer's), .hb.c and .hb.o the heartbeats,
 * .hello the rendezvous; ackpfx and deliver are fresh inboxes (PubAcks,
 * our consumer's deliveries); owner is the stream's Description,
 * "libipc CREATOR-ID". */
struct ipc_nats_names {
	char *tx, *rx, *hbtx, *hbrx, *hello, *ackpfx, *deliver;
	char stream[256], consumer[64];
	char owner[64];
};
/* 0 or -ENOMEM; ipc__nats_names_fini() either way. */
int ipc__nats_names(struct ipc_nats_names *n, const char *subject, int creator,
                    const char *id);
void ipc__nats_names_fini(struct ipc_nats_names *n);
/* The stream name for a subject: IPC_ + the subject + a hash. */
void ipc__nats_stream_name(char *out, size_t cap, const char *subject);
/* Create the channel's work-queue stream over two subjects (a leftover by
 * that name is deleted first); owner goes in its Description. */
int ipc__nats_make_stream(jsCtx *js, const struct ipc_uri *u, const char *name,
                          const char *owner, const char *subj1,
                          const char *subj2);
/* A durable push consumer with explicit acks; -ECONNREFUSED when the
 * stream is gone. */
int ipc__nats_make_consumer(jsCtx *js, const struct ipc_uri *u,
                            const char *stream, const char *durable,
                            const char *deliver, const char *filter,
                            size_t window);
/* Messages the consumer has yet to deliver; 0 also when it cannot be
 * asked (the peer's end counts as drained then). */
uint64_t ipc__nats_pending(jsCtx *js, const char *stream,
                           const char *consumer);
/* Delete the stream if its Description is still owner: a creator that
 * came later on the same subject has a stream by the same name, which is
 * not ours to delete. */
void ipc__nats_delete_stream(jsCtx *js, const char *name, const char *owner,
                             jsOptions *o);

/* The rendezvous: a request on subj (SUBJECT.hello) with our id and op
 * ("hello": an opener asks in; "probe": does a creator serve it?).  0 with
 * the creator's id in peer_id (IPC_NATS_IDLEN + 1 bytes); -ECONNREFUSED
 * (nobody serves it, or the creator has its peer), -EEXIST (probe: a live
 * creator), -ETIMEDOUT, -EINVAL (js= differs), -EPROTO; recorded. */
int ipc__nats_hello(natsConnection *nc, const struct ipc_uri *u,
                    const char *subj, const char *id, int use_js,
                    const char *op, int optimeout, char *peer_id);

/* ------------------------------------------- the in-order receive queue */

struct ipc_nats_pend {
	uint64_t seq;
	natsMsg *m;
};

struct ipc_nats_rxq {
	natsMsg **q; /* ready, in order: a ring */
	size_t head, n, cap;
	struct ipc_nats_pend *pend; /* arrived early, by seq */
	size_t npend, pendcap;
	uint64_t next;           /* the next Ipc-Seq expected */
	unsigned long long dups; /* redeliveries and resends dropped */
	size_t window;           /* the sender's window: bounds pend */
};

/* Take m: 1 when the queue keeps it, 0 when the caller destroys it (a
 * duplicate, a forgery beyond the window, no memory).  has_seq: m carries
 * Ipc-Seq seq (a message of a client that is not libipc does not, and is
 * queued as it comes).  ordered: hold early messages until the gap is
 * filled (JetStream); otherwise a gap is a loss (core NATS). */
int ipc__nats_rxq_put(struct ipc_nats_rxq *r, natsMsg *m, int has_seq,
                      uint64_t seq, int ordered);
natsMsg *ipc__nats_rxq_peek(const struct ipc_nats_rxq *r);
void ipc__nats_rxq_pop(struct ipc_nats_rxq *r);
void ipc__nats_rxq_fini(struct ipc_nats_rxq *r);

#endif
