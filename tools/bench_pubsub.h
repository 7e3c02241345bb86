/*
 * ipc-bench's publish/subscribe section (ipc-bench --pubsub): one
 * publisher process and 1, 4 or 16 subscriber processes per transport,
 * 64 B and 1 MiB messages.  A transport is a struct bench_ps_ops; libipc's
 * rows are in bench_pubsub.c, the peers' (ZeroMQ PUB/SUB, nng pub0/sub0,
 * iceoryx) in their own files.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_BENCH_PUBSUB_H
#define IPC_BENCH_PUBSUB_H

#include <stddef.h>

#include "bench.h"

struct bench_ps_env {
	char dir[64];   /* private directory for socket files */
	char token[48]; /* unique name */
	unsigned port;  /* a free loopback TCP port */
	size_t size;    /* message size of this cell */
	int nsubs;      /* subscribers of this cell */
	int index;      /* subscriber: 0 .. nsubs-1 */
	void *state;    /* what prepare() made */
};

struct bench_ps_ops {
	/* Orchestrator, before the processes start (optional). */
	int (*prepare)(struct bench_ps_env *e, char *why);
	/* Publisher (pub = 1) or subscriber; a subscriber retries itself
	 * while the publisher is not there yet. */
	int (*open)(struct bench_ps_env *e, int pub, void **ep, char *why);
	/* Publisher: one message of len bytes whose first hdr bytes are
	 * given (the rest is not written: payloads stay untouched, as in
	 * ipc-bench's zero-copy rows).  0 or -errno. */
	int (*publish)(void *ep, const void *hdr, size_t hdr_len, size_t len);
	/* Subscriber: the next message, in place: 1 with *buf and *len, 0
	 * when none came within timeout_ms, -errno (the end). */
	int (*next)(void *ep, const void **buf, size_t *len, int timeout_ms);
	void (*done)(void *ep); /* let go of what next() gave */
	void (*close)(void *ep);
	void (*cleanup)(struct bench_ps_env *e);
};

struct bench_ps_row {
	const char *name;
	const char *notes;
	const struct bench_ps_ops *ops; /* NULL: not built, see skip */
	const char *skip;
};

extern const struct bench_ps_row bench_ps_peer_rows[];
extern const struct bench_ps_ops bench_zmq_ps_ops;
extern const struct bench_ps_ops bench_nng_ps_ops;
extern const struct bench_ps_ops bench_iceoryx_ps_ops;

#ifdef NNG_MAXADDRLEN
/* bench_nng.c: listen on url, or dial it, retrying a few seconds while
 * nobody listens yet.  0 or an nng error. */
int bench_nng_attach(nng_socket sock, const char *url, int listener);
#endif

/* Run the section and print its table; 0, or 1 when a cell failed.
 * only: the rows to run, comma-separated (NULL: all).  one_to_one_64 and
 * _copy: the 64 B msg/s of libipc's shm-zc and shm rows of this run (0:
 * not run), for the fan-out ratios. */
int bench_pubsub_run(const char *tmpdir, int quick, const char *only,
                     double one_to_one_64, double one_to_one_64_copy);

#endif /* IPC_BENCH_PUBSUB_H */
