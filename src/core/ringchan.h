/*
 * A channel made of two rings (src/core/ring.h): the glue every ring
 * driver shares (shm://, mmap://).  The driver maps the memory, finds its
 * peer and tells this module three things through struct ipc_rchan_ops:
 * how to look at the peer's liveness, what to say when it is gone, and how
 * to make a side's descriptor readable.  This module does the rest: send,
 * recv and zero-copy on the rings, futex waits in slices with a liveness
 * look between them, poll descriptors armed through IPC_RING_NOTIFY, and
 * the level-triggered ipc_fd() (an epoll set of the "data" descriptor and
 * the liveness descriptor).
 *
 * Descriptors.  Each side owns two descriptors that turn readable when
 * kicked: "data" (for its consumer role) and "room" (for its producer
 * role).  The peer kicks them only while this side has armed
 * IPC_RING_NOTIFY on the ring (poll, or recv returning -EAGAIN once
 * ipc_fd() was taken), so a busy stream makes no system call.  They may be
 * eventfds (shm://) or datagram sockets (mmap://); set drain_all for
 * descriptors that may hold more than one wake-up.  live_fd, when >= 0,
 * turns readable (live_events) when the peer may have gone; without one,
 * poll looks at the peer every SLICE_MS.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef IPC_CORE_RINGCHAN_H
#define IPC_CORE_RINGCHAN_H

#include <pthread.h>
#include <stdatomic.h>

#include "driver.h"
#include "ring.h"

#define IPC_RCHAN_LAZY_MS  50  /* liveness look of non-blocking calls */
#define IPC_RCHAN_SLICE_MS 200 /* liveness look while asleep or polling */

struct ipc_rchan;

struct ipc_rchan_ops {
	/* Look at the peer now (a system call is fine): 1 if it may still
	 * be there, 0 if it is gone (then set c->dead). */
	int (*check_alive)(struct ipc_rchan *c);
	/* Record and return the error for a gone peer. */
	int (*gone_err)(struct ipc_rchan *c, const char *uri);
	/* Make a descriptor readable: the peer's (peer = 1) or our own,
	 * "data" for IPC_RING_CONSUMER, "room" for IPC_RING_PRODUCER. */
	void (*kick)(struct ipc_rchan *c, int peer, enum ipc_ring_role role);
	/* Optional: called after a commit published tx bytes [from, to) and
	 * after a release freed rx bytes (from == to == the new tail), for
	 * drivers that make writes durable (msync). */
	void (*published)(struct ipc_rchan *c, int tx, uint64_t from,
	                  uint64_t to);
};

struct ipc_rchan {
	struct ipc_ring tx; /* we produce */
	char pad0[64];
	struct ipc_ring rx; /* we consume */
	char pad1[64];
	_Atomic int dead;            /* the peer is gone */
	_Atomic uint64_t checked_ns; /* last liveness look */
	pthread_mutex_t lock;        /* connecting, epoll set-up */
	int efd_data, efd_room;      /* ours: the peer kicks them */
	int live_fd;                 /* readable when the peer may be gone */
	short live_events;
	int drain_all; /* efd_* may hold several wake-ups */
	int epfd;      /* ipc_fd(), made on demand */
	_Atomic int fd_exported;
	_Atomic int poked; /* we kicked our own "data" descriptor */
	uint64_t spin_ns;
	size_t want_tx; /* length of the last send that found no room */
	size_t ring_size;
	const char *uri;
	const struct ipc_rchan_ops *ops;
};

/* Ring ops for ipc_ring_attach with ctx = the struct ipc_rchan: futex
 * waits, and notify through ops->kick(peer = 1). */
extern const struct ipc_ring_ops ipc__rchan_ring_ops;

/* Set every descriptor to -1 and the lock up; ops and uri kept. */
void ipc__rchan_init(struct ipc_rchan *c, const struct ipc_rchan_ops *ops,
                     const char *uri);
/* Close the descriptors this module knows (efd_*, live_fd, epfd) and
 * destroy the lock.  The rings' memory is the driver's. */
void ipc__rchan_free(struct ipc_rchan *c);

/* Nanoseconds of CLOCK_MONOTONIC, and of CLOCK_MONOTONIC_COARSE (a tick
 * behind, far cheaper: for liveness looks and slices on hot paths). */
uint64_t ipc__rchan_now_ns(void);
uint64_t ipc__rchan_coarse_ns(void);
/* Parse spin= ("busy" or microseconds up to 1 s) into *spin_ns (default
 * def_us when s is NULL). */
int ipc__rchan_parse_spin(const char *s, unsigned def_us, uint64_t *spin_ns,
                          const char *uri);

/* Is the peer alive, as far as a look at most every LAZY_MS tells? */
int ipc__rchan_alive_lazy(struct ipc_rchan *c);

/* The slots, once the driver knows the rings are attached.  Same
 * contracts as the driver slots of driver.h. */
ssize_t ipc__rchan_send(ipc_channel *ch, struct ipc_rchan *c, const void *buf,
                        size_t len);
ssize_t ipc__rchan_recv(ipc_channel *ch, struct ipc_rchan *c, void *buf,
                        size_t cap);
int ipc__rchan_reserve(ipc_channel *ch, struct ipc_rchan *c, size_t len,
                       void **buf);
int ipc__rchan_commit(ipc_channel *ch, struct ipc_rchan *c, size_t len);
int ipc__rchan_acquire(ipc_channel *ch, struct ipc_rchan *c, const void **buf,
                       size_t *len);
int ipc__rchan_release(ipc_channel *ch, struct ipc_rchan *c);
int ipc__rchan_wait(struct ipc_rchan *c, short events,
                    const struct timespec *deadline);
int ipc__rchan_pollfds(struct ipc_rchan *c, short events, struct pollfd *pfd,
                       int *retry_ms);
short ipc__rchan_ready(struct ipc_rchan *c, short events,
                       const struct pollfd *pfd, int npfd);

/* Mark both rings closed: the consumer side first, so that a peer that
 * sees our producer's close (recv -EPIPE) and sends at once gets -EPIPE
 * too. */
void ipc__rchan_close(struct ipc_rchan *c);

/* ipc_fd(): call with c->lock held.  Makes the epoll set on first use
 * (with efd_data and live_fd), marks the descriptor exported and, if
 * `attached`, makes it readable when something is waiting already.
 * Returns the descriptor or a recorded error. */
int ipc__rchan_fd_locked(struct ipc_rchan *c, int attached);
/* Add fd to ipc_fd()'s epoll set, if there is one (EEXIST is fine). */
void ipc__rchan_epoll_add(struct ipc_rchan *c, int fd, uint32_t events);
void ipc__rchan_epoll_del(struct ipc_rchan *c, int fd);
/* Put efd_data and live_fd into the epoll set (after they changed). */
void ipc__rchan_epoll_update(struct ipc_rchan *c);
/* After a receive or release, with ipc_fd() taken: if the ring is empty
 * now, clear the descriptor (and arm it again), so that it reads as
 * level-triggered to a caller that polls it without receiving until
 * -EAGAIN. */
void ipc__rchan_rx_settle(struct ipc_rchan *c);
/* After the rings were attached with ipc_fd() already taken: arm, and
 * make the descriptor readable if something waits. */
void ipc__rchan_attached(struct ipc_rchan *c);

#endif /* IPC_CORE_RINGCHAN_H */
