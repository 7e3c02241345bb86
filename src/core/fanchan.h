/*
 * shm:// publish/subscribe channels: the fan-out ring (fanring.h) in a
 * sealed memfd, behind the shm:// rendezvous (shmrdv.h).  backends/shm.c
 * hands a channel opened with IPC_PUBLISH or IPC_SUBSCRIBE to this module.
 *
 * Publisher.  ipc_open(IPC_PUBLISH) makes the memfd (the header, a table
 * of subs= entries, slots= slots of maxmsg= bytes), binds the abstract
 * socket of NAME and returns.  Subscribers connect and send a request
 * (their slow= and history=); the publisher takes them in between its
 * own calls (every IPC_FANCHAN_LAZY_MS in send, at once in
 * ipc_subscribers(), ipc_poll and while it waits): it admits the
 * subscriber into a free entry (cursor = head - history: nothing is
 * copied), makes it an eventfd and sends the memfd, that eventfd and its
 * own "room" eventfd in one reply.  The connection then carries nothing:
 * its hang-up is the subscriber's close or death, and the publisher
 * evicts the entry, which drops every reference the subscriber held, so a
 * subscriber killed while it held or lagged never stalls the publisher
 * for longer than a wait slice (IPC_RCHAN_SLICE_MS).  A subscriber whose
 * entry makes no sense is evicted the same way.
 *
 * Subscriber.  ipc_open(IPC_SUBSCRIBE) connects and sends its request,
 * without waiting; its first call reads the reply (or waits for it),
 * checks it and the memfd (sealed, of the size the geometry gives), maps
 * it and reads messages in place.  The publisher's close is a flag in the
 * segment (the rest is delivered first, then -EPIPE); its death is the
 * socket's hang-up, seen between wait slices and by poll.
 *
 * Only the process that opened a publisher closes the ring: a forked
 * child's ipc_close of an inherited publisher releases its copies only.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_FANCHAN_H
#define IPC_CORE_FANCHAN_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "driver.h"
#include "fanring.h"
#include "trust.h"

#define IPC_FANCHAN_LAZY_MS 50 /* the publisher looks at its sockets */
#define IPC_FANCHAN_MAXPEND 16 /* connected, request not read yet */

/* The options a pub/sub shm:// URI takes, for the driver's table. */
#define IPC_FANCHAN_OPTS                                                       \
	{"slots",                                                              \
	 IPC_OPT_UINT,                                                         \
	 2,                                                                    \
	 IPC_FAN_MAXSLOTS,                                                     \
	 NULL,                                                                 \
	 "publish/subscribe: messages in flight, a power of two (default "     \
	 "64)"},                                                               \
	        {"maxmsg", IPC_OPT_SIZE,                                       \
	         0,        IPC_FAN_MAXSLOT,                                    \
	         NULL,     "publish/subscribe: largest message (default 1M)"}, \
	{                                                                      \
		"subs", IPC_OPT_UINT, 1, IPC_FAN_MAXSUBS, NULL,                \
		        "publish/subscribe: most subscribers (default 256)"    \
	}

struct ipc_fan_peer {
	int sock; /* -1: entry free */
	int efd;  /* the subscriber's eventfd (we write it) */
};

struct ipc_fanchan {
	const char *uri;
	int role;             /* IPC_PUBLISH or IPC_SUBSCRIBE */
	pthread_mutex_t lock; /* the publisher's state; connecting */
	char name[208];
	unsigned mode;
	struct ipc_trust trust;
	uint64_t spin_ns;
	int drop, drop_set;
	unsigned history;
	unsigned char *mem;
	size_t mem_len;
	struct ipc_fan_geom g;
	/* publisher */
	struct ipc_fan_pub pub;
	int lsock, ep, room_efd, memfd;
	struct ipc_fan_peer *peers; /* g.max_subs, by entry */
	int pend[IPC_FANCHAN_MAXPEND];
	int npend;
	uint64_t checked_ns;
	pid_t owner;
	/* subscriber */
	struct ipc_fan_sub sub;
	int sock, efd, pub_room_efd;
	_Atomic int state; /* 0 waiting for the reply, 1 ready, 2 failed */
	int failed;
	_Atomic int dead; /* the publisher's socket hung up */
	int epfd;         /* ipc_fd() */
	uint64_t want_slots, want_maxmsg, want_subs; /* given: must match */
	int exported;
};

/* Open ch (role from flags) on URI u; the driver's option table holds
 * IPC_PUBSUB_OPTS, IPC_FANCHAN_OPTS, spin=, mode= and the trust options. */
int ipc__fan_open(ipc_channel *ch, struct ipc_fanchan *f,
                  const struct ipc_uri *u, int flags, uint64_t spin_ns,
                  unsigned mode);
int ipc__fan_close(ipc_channel *ch, struct ipc_fanchan *f);

ssize_t ipc__fan_send(ipc_channel *ch, struct ipc_fanchan *f, const void *buf,
                      size_t len);
int ipc__fan_reserve(ipc_channel *ch, struct ipc_fanchan *f, size_t len,
                     void **buf);
int ipc__fan_commit(ipc_channel *ch, struct ipc_fanchan *f, size_t len);
ssize_t ipc__fan_recv(ipc_channel *ch, struct ipc_fanchan *f, void *buf,
                      size_t cap);
int ipc__fan_acquire(ipc_channel *ch, struct ipc_fanchan *f, const void **buf,
                     size_t *len);
int ipc__fan_release(ipc_channel *ch, struct ipc_fanchan *f);

int ipc__fan_wait(ipc_channel *ch, struct ipc_fanchan *f, short events,
                  const struct timespec *deadline);
int ipc__fan_pollfds(ipc_channel *ch, struct ipc_fanchan *f, short events,
                     struct pollfd *pfd, int *retry_ms);
short ipc__fan_ready(ipc_channel *ch, struct ipc_fanchan *f, short events,
                     const struct pollfd *pfd, int npfd);
int ipc__fan_fd(struct ipc_fanchan *f);

int ipc__fan_subscribers(struct ipc_fanchan *f);
unsigned long long ipc__fan_dropped(const struct ipc_fanchan *f);

#endif /* IPC_CORE_FANCHAN_H */
