/*
 * The glue between two rings and a channel, shared by the ring drivers
 * (see ringchan.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "ringchan.h"

#define MAX_SPIN_US 1000000u

static void
rchan_notify(void *ctx, enum ipc_ring_role role)
{
	struct ipc_rchan *c = ctx;
	c->ops->kick(c, 1, role);
}

const struct ipc_ring_ops ipc__rchan_ring_ops = {
        .wait = ipc__ring_futex_wait,
        .wake = ipc__ring_futex_wake,
        .notify = rchan_notify,
};

void
ipc__rchan_init(struct ipc_rchan *c, const struct ipc_rchan_ops *ops,
                const char *uri)
{
	memset(c, 0, sizeof(*c));
	c->efd_data = c->efd_room = c->live_fd = c->epfd = -1;
	c->ops = ops;
	c->uri = uri;
	pthread_mutex_init(&c->lock, NULL);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

void
ipc__rchan_free(struct ipc_rchan *c)
{
	close_fd(&c->efd_data);
	close_fd(&c->efd_room);
	close_fd(&c->live_fd);
	close_fd(&c->epfd);
	pthread_mutex_destroy(&c->lock);
}

uint64_t
ipc__rchan_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
ipc__rchan_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int
ipc__rchan_parse_spin(const char *sp, unsigned def_us, uint64_t *spin_ns,
                      const char *uri)
{
	*spin_ns = (uint64_t)def_us * 1000u;
	if (sp == NULL) {
		return 0;
	}
	if (strcmp(sp, "busy") == 0) {
		*spin_ns = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long us = strtoull(sp, &end, 10);
	if (*sp < '0' || *sp > '9' || *end != '\0' || errno != 0 ||
	    us > MAX_SPIN_US) {
		return ipc__err(-EINVAL, uri,
		                "spin='%s' is not a number of microseconds "
		                "from 0 to %u, or 'busy'",
		                sp, MAX_SPIN_US);
	}
	*spin_ns = us * 1000u;
	return 0;
}

/* Make our own "data" descriptor readable (ipc_fd found data waiting). */
static void
self_poke(struct ipc_rchan *c)
{
	atomic_store(&c->poked, 1);
	c->ops->kick(c, 0, IPC_RING_CONSUMER);
}

/* Our own descriptor may hold a wake-up from an earlier arming: clear it
 * before arming again (only if the peer consumed the arming). */
static void
drain(struct ipc_rchan *c, int fd)
{
	unsigned char v[64];
	while (read(fd, v, sizeof(v)) > 0 && c->drain_all) {
	}
}

static int
arm_rx(struct ipc_rchan *c)
{
	if (!ipc_ring_notify_armed(&c->rx) || atomic_exchange(&c->poked, 0)) {
		drain(c, c->efd_data);
	}
	return ipc_ring_arm_notify(&c->rx, 0);
}

static int
arm_tx(struct ipc_rchan *c)
{
	if (!ipc_ring_notify_armed(&c->tx)) {
		drain(c, c->efd_room);
	}
	return ipc_ring_arm_notify(&c->tx, c->want_tx);
}

int
ipc__rchan_alive_lazy(struct ipc_rchan *c)
{
	if (atomic_load_explicit(&c->dead, memory_order_relaxed)) {
		return 0;
	}
	uint64_t t = ipc__rchan_coarse_ns();
	if (t - atomic_load_explicit(&c->checked_ns, memory_order_relaxed) <
	    (uint64_t)IPC_RCHAN_LAZY_MS * 1000000u) {
		return 1;
	}
	atomic_store_explicit(&c->checked_ns, t, memory_order_relaxed);
	return c->ops->check_alive(c);
}

/* ---------------------------------------------------------- the slots -- */

static int
tx_fail(ipc_channel *ch, struct ipc_rchan *c, int r, size_t len)
{
	switch (r) {
	case -EAGAIN:
		c->want_tx = len;
		if (!ipc__rchan_alive_lazy(c)) {
			return c->ops->gone_err(c, ch->uri);
		}
		return -EAGAIN;
	case -EPIPE:
		return ipc__err_peer(ch->uri, "send", IPC_PEER_CLOSED);
	case -EMSGSIZE:
		return ipc__err(-EMSGSIZE, ch->uri,
		                "message of %zu bytes exceeds the ring's "
		                "maximum of %zu",
		                len, ipc_ring_max_msg(c->ring_size));
	case -EPROTO:
		return ipc__err(-EPROTO, ch->uri,
		                "the peer corrupted the shared ring");
	case -EBUSY:
		return ipc__err(-EBUSY, ch->uri,
		                "a reservation is open: commit it first");
	default:
		return ipc__err(r, ch->uri, "reserve failed");
	}
}

/* Ready to send: the peer not known to be gone (a send into the ring of a
 * dead peer would be lost). */
static inline int
tx_ok(ipc_channel *ch, struct ipc_rchan *c)
{
	if (__builtin_expect(
	            atomic_load_explicit(&c->dead, memory_order_relaxed), 0)) {
		return c->ops->gone_err(c, ch->uri);
	}
	return 0;
}

static inline void
committed(struct ipc_rchan *c, uint64_t from)
{
	if (c->ops->published != NULL) {
		c->ops->published(c, 1, from, c->tx.head);
	}
}

ssize_t
ipc__rchan_send(ipc_channel *ch, struct ipc_rchan *c, const void *buf,
                size_t len)
{
	void *dst;
	int r = tx_ok(ch, c);
	if (r < 0) {
		return r;
	}
	r = ipc_ring_reserve(&c->tx, len, &dst);
	if (__builtin_expect(r != 0, 0)) {
		return tx_fail(ch, c, r, len);
	}
	if (len > 0) {
		memcpy(dst, buf, len);
	}
	uint64_t from = c->tx.rsv_pos;
	ipc_ring_commit(&c->tx, len);
	committed(c, from);
	return (ssize_t)len;
}

static int
rx_fail(ipc_channel *ch, struct ipc_rchan *c, int r)
{
	switch (r) {
	case -EAGAIN:
		if (!ipc__rchan_alive_lazy(c)) {
			/* rx_next looked again after the death was seen:
			 * the ring is empty for good. */
			return c->ops->gone_err(c, ch->uri);
		}
		return -EAGAIN;
	case -EPIPE:
		return ipc__err_peer(ch->uri, "recv", IPC_PEER_CLOSED);
	case -EPROTO:
		return ipc__err(-EPROTO, ch->uri,
		                "the peer corrupted the shared ring");
	case -EBUSY:
		return ipc__err(-EBUSY, ch->uri,
		                "a message is acquired: release it first");
	default:
		return ipc__err(r, ch->uri, "receive failed");
	}
}

/* acquire, with the event-loop arming on an empty ring. */
static int
rx_next(struct ipc_rchan *c, const void **src, size_t *n)
{
	int r = ipc_ring_acquire(&c->rx, src, n);
	if (r == -EAGAIN &&
	    atomic_load_explicit(&c->fd_exported, memory_order_relaxed)) {
		/* ipc_fd users poll the descriptor next: arm it, and look
		 * once more in case the producer missed the flag. */
		if (arm_rx(c)) {
			r = ipc_ring_acquire(&c->rx, src, n);
		}
	}
	if (r == -EAGAIN && !ipc__rchan_alive_lazy(c)) {
		/* Gone: what it published (and its close flag) came before
		 * its end, which was seen after the empty look: look again,
		 * so that nothing it sent is lost and a close reads as one. */
		r = ipc_ring_acquire(&c->rx, src, n);
	}
	return r;
}

static inline void
released(struct ipc_rchan *c)
{
	if (c->ops->published != NULL) {
		c->ops->published(c, 0, c->rx.tail, c->rx.tail);
	}
}

ssize_t
ipc__rchan_recv(ipc_channel *ch, struct ipc_rchan *c, void *buf, size_t cap)
{
	const void *src;
	size_t n;
	int r = rx_next(c, &src, &n);
	if (__builtin_expect(r != 0, 0)) {
		return rx_fail(ch, c, r);
	}
	ssize_t got = ipc_ring_copy_out(&c->rx, src, n, buf, cap, ch->uri);
	if (got >= 0) {
		released(c);
	}
	return got;
}

int
ipc__rchan_reserve(ipc_channel *ch, struct ipc_rchan *c, size_t len,
                   void **buf)
{
	int r = tx_ok(ch, c);
	if (r < 0) {
		return r;
	}
	r = ipc_ring_reserve(&c->tx, len, buf);
	return r == 0 ? 0 : tx_fail(ch, c, r, len);
}

int
ipc__rchan_commit(ipc_channel *ch, struct ipc_rchan *c, size_t len)
{
	uint64_t from = c->tx.rsv_pos;
	int r = ipc_ring_commit(&c->tx, len);
	if (r < 0) {
		return ipc__err(r, ch->uri, "commit without a reservation");
	}
	committed(c, from);
	return 0;
}

int
ipc__rchan_acquire(ipc_channel *ch, struct ipc_rchan *c, const void **buf,
                   size_t *len)
{
	int r = rx_next(c, buf, len);
	return r == 0 ? 0 : rx_fail(ch, c, r);
}

int
ipc__rchan_release(ipc_channel *ch, struct ipc_rchan *c)
{
	int r = ipc_ring_release(&c->rx);
	if (r < 0) {
		return ipc__err(r, ch->uri, "release without an acquire");
	}
	released(c);
	return 0;
}

int
ipc__rchan_wait(struct ipc_rchan *c, short events,
                const struct timespec *deadline)
{
	int in = (events & IPC_POLLIN) != 0;
	struct ipc_ring *ring = in ? &c->rx : &c->tx;
	size_t len = in ? 0 : c->want_tx;
	uint64_t spin = c->spin_ns;
	uint64_t dl = UINT64_MAX;
	if (deadline != NULL) {
		dl = deadline->tv_sec < 0
		             ? 0
		             : (uint64_t)deadline->tv_sec * 1000000000u +
		                       (uint64_t)deadline->tv_nsec;
	}
	for (;;) {
		if (atomic_load(&c->dead)) {
			return 0;
		}
		/* The slice's end from the coarse clock (cheap; a tick
		 * early at worst): the caller's deadline stays exact. */
		uint64_t t = ipc__rchan_coarse_ns();
		uint64_t until = t + (uint64_t)IPC_RCHAN_SLICE_MS * 1000000u;
		if (until > dl) {
			until = dl;
		}
		struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
		                      .tv_nsec = (long)(until % 1000000000u)};
		int r = ipc_ring_wait(ring, len, spin, &ts);
		if (r == 0) {
			return 0;
		}
		if (!c->ops->check_alive(c)) {
			return 0;
		}
		if (until >= dl) {
			return -ETIMEDOUT;
		}
		if (spin != UINT64_MAX) {
			spin = 0; /* spun once already: sleep from now on */
		}
	}
}

int
ipc__rchan_pollfds(struct ipc_rchan *c, short events, struct pollfd *pfd,
                   int *retry_ms)
{
	int n = 0, ready = 0;
	if (events & IPC_POLLIN) {
		ready |= arm_rx(c);
		pfd[n].fd = c->efd_data;
		pfd[n].events = POLLIN;
		n++;
	}
	if (events & IPC_POLLOUT) {
		ready |= arm_tx(c);
		pfd[n].fd = c->efd_room;
		pfd[n].events = POLLIN;
		n++;
	}
	if (c->live_fd >= 0) {
		pfd[n].fd = c->live_fd;
		pfd[n].events = c->live_events;
		n++;
	} else {
		*retry_ms = IPC_RCHAN_SLICE_MS;
	}
	if (ready || atomic_load(&c->dead)) {
		*retry_ms = 0;
	}
	return n;
}

short
ipc__rchan_ready(struct ipc_rchan *c, short events, const struct pollfd *pfd,
                 int npfd)
{
	if (c->live_fd < 0 && pfd != NULL) {
		ipc__rchan_alive_lazy(c);
	}
	for (int i = 0; i < npfd; i++) {
		if (pfd[i].fd == c->live_fd && c->live_fd >= 0 &&
		    pfd[i].revents != 0 && !atomic_load(&c->dead)) {
			c->ops->check_alive(c);
		}
	}
	short r = 0;
	int gone = atomic_load(&c->dead) || ipc_ring_peer_closed(&c->rx) ||
	           ipc_ring_peer_closed(&c->tx);
	if ((events & IPC_POLLIN) && (gone || ipc_ring_readable(&c->rx))) {
		r |= IPC_POLLIN;
	}
	if ((events & IPC_POLLOUT) &&
	    (gone || ipc_ring_writable(&c->tx, c->want_tx))) {
		r |= IPC_POLLOUT;
	}
	if (gone) {
		r |= IPC_POLLHUP;
	}
	if (c->rx.broken || c->tx.broken) {
		r |= IPC_POLLERR;
	}
	return r;
}

void
ipc__rchan_close(struct ipc_rchan *c)
{
	ipc_ring_close(&c->rx);
	ipc_ring_close(&c->tx);
}

/* --------------------------------------------------------------- epoll -- */

void
ipc__rchan_epoll_add(struct ipc_rchan *c, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};
	if (c->epfd >= 0 && fd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev);
	}
}

void
ipc__rchan_epoll_del(struct ipc_rchan *c, int fd)
{
	if (c->epfd >= 0 && fd >= 0) {
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
	}
}

void
ipc__rchan_epoll_update(struct ipc_rchan *c)
{
	uint32_t lev = EPOLLIN;
	if (c->live_events & POLLRDHUP) {
		lev |= EPOLLRDHUP;
	}
	ipc__rchan_epoll_add(c, c->live_fd, lev);
	ipc__rchan_epoll_add(c, c->efd_data, EPOLLIN);
}

int
ipc__rchan_fd_locked(struct ipc_rchan *c, int attached)
{
	if (c->epfd < 0) {
		c->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (c->epfd < 0) {
			return ipc__errno(-errno, c->uri, "epoll_create1");
		}
		ipc__rchan_epoll_update(c);
	}
	atomic_store(&c->fd_exported, 1);
	if (attached && arm_rx(c)) {
		/* Something is there already: make the descriptor say so. */
		self_poke(c);
	}
	return c->epfd;
}

void
ipc__rchan_rx_settle(struct ipc_rchan *c)
{
	if (!atomic_load_explicit(&c->fd_exported, memory_order_relaxed) ||
	    ipc_ring_readable(&c->rx)) {
		return;
	}
	if (arm_rx(c)) {
		self_poke(c); /* a message came meanwhile */
	}
}

void
ipc__rchan_attached(struct ipc_rchan *c)
{
	if (atomic_load(&c->fd_exported) && arm_rx(c)) {
		self_poke(c);
	}
}
