/*
 * shm://NAME: the shared-memory fast path.  Two SPSC rings (src/core/
 * ring.h) in one sealed memfd, one per direction; futex waits after a
 * short spin; zero-copy reserve/commit and acquire/release in place.
 *
 * Rendezvous.  The serving side (ipc_open with IPC_CREATE, or ipc_listen)
 * binds the abstract Unix seqpacket socket "@libipc/shm/NAME".  An opener
 * connects and returns at once.  The server, when it accepts (ipc_accept,
 * or the first call on an IPC_CREATE channel), checks the client's
 * credentials against mode=, creates the memfd holding both rings (sealed
 * against shrinking and growing, so the client can map it safely) and four
 * eventfds, and sends them in one "hello" message with SCM_RIGHTS.  Both
 * sides map the memfd and close it: nothing is ever named in /dev/shm, and
 * the memory goes away with the last mapping, even after kill -9 of both.
 *
 * The socket stays open for the life of the channel and carries nothing
 * after the hello: its hang-up is the peer's death.  A side blocked in the
 * futex sleeps in slices of IPC_RCHAN_SLICE_MS and looks at the socket between
 * them, and poll watches it, so a dead peer is reported as -EPIPE /
 * IPC_POLLHUP within a slice.  A clean close sets the rings' close flags (and
 * wakes a sleeper), which is seen at once and costs nothing per message.
 *
 * Fork.  Each end counts the processes holding it (holders[] in the
 * segment, raised for every open channel in a pthread_atfork child
 * handler); a close marks the rings closed only when the last holder of
 * the end closes, so that after ipc_pair + fork each process can close the
 * end it does not use without disturbing the other.
 *
 * Poll and event loops.  Each end owns two eventfds ("data for me", "room
 * for me") that the peer writes only while this end has armed
 * IPC_RING_NOTIFY (poll/pollfds, or recv returning -EAGAIN after ipc_fd
 * was taken); the peer clears the flag and writes once.  A busy stream
 * with nobody polling therefore makes no system call.  ipc_fd() is an
 * epoll descriptor holding the "data" eventfd and the socket, so it also
 * turns readable when the peer dies.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/fanchan.h"
#include "core/ring.h"
#include "core/ringchan.h"
#include "core/shmrdv.h"
#include "core/sock.h"

#define SHM_DEFAULT_SIZE    (4u << 20) /* carries 1 MiB messages, 3 in flight */
#define SHM_DEFAULT_SPIN_US 50u        /* longer than a futex wake-up */
#define SEG_HDR             4096u      /* segment header page */
#define SEG_MAGIC           0x31676573636d6873ull /* "shmcseg1" */
#define NFDS                5 /* memfd, then data/room eventfds of end 0, then of end 1 */

/* The segment header (first page of the memfd). */
struct shm_seg {
	uint64_t magic;
	uint64_t version;
	uint64_t ring_size;
	uint64_t seg_len;
	_Atomic uint32_t holders[2]; /* processes holding each end */
};

enum { ST_WAIT_PEER, ST_READY, ST_FAILED };

#define MAXPEND 16

/* A listening socket and the clients that connected but whose hello has
 * not been read yet. */
struct acceptor {
	int lsock;
	int pend[MAXPEND];
	int npend, maxpend;
};

struct shm_chan {
	struct ipc_rchan rc; /* first: the ring callbacks cast back */
	_Atomic int state;
	int failed; /* ST_FAILED: the error to return */
	struct shm_seg *seg;
	size_t seg_len;
	int size_set;        /* size= given (a server checks the client's) */
	int end;             /* 0: opener / first of a pair, 1: server side */
	struct acceptor acc; /* IPC_CREATE: listening until the peer comes */
	int refused;         /* the server refused us: its errno */
	int pefd_data, pefd_room; /* the peer's: we write them */
	unsigned mode;
	struct ipc_trust trust; /* allow_uid=, allow_gid= */
	char name[208];
	int listed;                   /* on the fork list */
	struct shm_chan *next, *prev; /* fork list */
};

struct shm_listener {
	struct acceptor acc;
	int epfd; /* listener_fd: the socket and the pending clients */
	unsigned mode;
	struct ipc_trust trust;
	size_t ring_size;
	int size_set;
	uint64_t spin_ns;
	char name[208];
};

static const struct ipc_optspec shm_opts[] = {
        {"size", IPC_OPT_SIZE, IPC_RING_MIN, IPC_RING_MAX, NULL,
         "ring bytes per direction, a power of two (default 4M)"},
        {"spin", IPC_OPT_STR, 0, 0, NULL,
         "microseconds to spin before sleeping (default 50), or busy"},
        {"mode", IPC_OPT_MODE, 0, 0777, NULL,
         "who may be the peer, as permission bits (default 0600)"},
        IPC_TRUST_OPTS,
        IPC_PUBSUB_OPTS,
        IPC_FANCHAN_OPTS,
        {NULL, 0, 0, 0, NULL, NULL},
};

/* IPC_PUBLISH / IPC_SUBSCRIBE channels are core/fanchan.c's. */
#define SHM_PRIV_SIZE                                                         \
	(sizeof(struct shm_chan) > sizeof(struct ipc_fanchan)                 \
	         ? sizeof(struct shm_chan)                                    \
	         : sizeof(struct ipc_fanchan))

static inline struct ipc_fanchan *
fan(ipc_channel *ch)
{
	return ipc__priv(ch);
}

/* ---------------------------------------------------------- fork list -- */

static pthread_mutex_t fork_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static struct shm_chan *fork_list;

/* Count the child as a holder of every end before it exists: the parent
 * may close its copy right after fork returns, before the child runs.  (If
 * fork fails the count stays one too high; the peer then learns of our
 * close from the socket's hang-up instead, within a slice.) */
static void
fork_prepare(void)
{
	pthread_mutex_lock(&fork_lock);
	for (struct shm_chan *s = fork_list; s != NULL; s = s->next) {
		atomic_fetch_add(&s->seg->holders[s->end], 1);
	}
}

static void
fork_parent(void)
{
	pthread_mutex_unlock(&fork_lock);
}

static void
fork_child(void)
{
	pthread_mutex_unlock(&fork_lock);
}

static void
fork_init(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void
list_add(struct shm_chan *s)
{
	pthread_once(&fork_once, fork_init);
	pthread_mutex_lock(&fork_lock);
	s->prev = NULL;
	s->next = fork_list;
	if (fork_list != NULL) {
		fork_list->prev = s;
	}
	fork_list = s;
	s->listed = 1;
	pthread_mutex_unlock(&fork_lock);
}

static void
list_del(struct shm_chan *s)
{
	if (!s->listed) {
		return;
	}
	pthread_mutex_lock(&fork_lock);
	if (s->prev != NULL) {
		s->prev->next = s->next;
	} else {
		fork_list = s->next;
	}
	if (s->next != NULL) {
		s->next->prev = s->prev;
	}
	s->listed = 0;
	pthread_mutex_unlock(&fork_lock);
}

/* ------------------------------------------------------------ helpers -- */

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		close_fd(&fds[i]);
	}
}

static void
acc_close(struct acceptor *a)
{
	close_fds(a->pend, a->npend);
	a->npend = 0;
	close_fd(&a->lsock);
}

static size_t
page_round(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

static size_t
seg_len_for(size_t ring_size)
{
	return SEG_HDR + 2 * page_round(ipc_ring_region_size(ring_size));
}

/* Kick an eventfd: the peer's (we write them while it polls) or our own
 * "data" one (ipc_fd found data waiting). */
static void
shm_kick(struct ipc_rchan *c, int peer, enum ipc_ring_role role)
{
	struct shm_chan *s = (struct shm_chan *)c;
	uint64_t one = 1;
	int fd;
	if (peer) {
		fd = role == IPC_RING_CONSUMER ? s->pefd_data : s->pefd_room;
	} else {
		fd = role == IPC_RING_CONSUMER ? c->efd_data : c->efd_room;
	}
	ssize_t n = write(fd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero */
}

static int shm_check_alive(struct ipc_rchan *c);
static int shm_gone_err(struct ipc_rchan *c, const char *uri);

static const struct ipc_rchan_ops shm_rc_ops = {
        .check_alive = shm_check_alive,
        .gone_err = shm_gone_err,
        .kick = shm_kick,
        .published = NULL,
};

/* Options shared by open, pair and listen. */
static int
parse_opts(const struct ipc_uri *u, int flags, size_t *size, int *size_set,
           uint64_t *spin_ns, unsigned *mode)
{
	struct ipc_pubsub_opts o;
	if (ipc__pubsub_opts(u, flags, &o) < 0) {
		return -EINVAL;
	}
	if (!(flags & (IPC_PUBLISH | IPC_SUBSCRIBE)) &&
	    (ipc__opt_isset(u, "slots") || ipc__opt_isset(u, "maxmsg") ||
	     ipc__opt_isset(u, "subs"))) {
		return ipc__err(-EINVAL, u->text,
		                "slots=, maxmsg= and subs= apply to "
		                "IPC_PUBLISH and IPC_SUBSCRIBE only");
	}
	*size_set = ipc__opt_isset(u, "size");
	unsigned long long sz = ipc__opt_num(u, "size", SHM_DEFAULT_SIZE);
	if (!ipc_ring_size_ok(sz)) {
		return ipc__err(-EINVAL, u->text,
		                "size=%llu is not a power of two from %u to "
		                "%llu",
		                sz, IPC_RING_MIN, IPC_RING_MAX);
	}
	*size = (size_t)sz;
	int r = ipc__rchan_parse_spin(ipc__opt_str(u, "spin", NULL),
	                              SHM_DEFAULT_SPIN_US, spin_ns, u->text);
	if (r < 0) {
		return r;
	}
	*mode = (unsigned)ipc__opt_num(u, "mode", 0600);
	return 0;
}

static void
chan_init(struct shm_chan *s, const char *uri)
{
	memset(s, 0, sizeof(*s));
	ipc__rchan_init(&s->rc, &shm_rc_ops, uri);
	s->rc.live_events = POLLIN | POLLRDHUP;
	s->acc.lsock = -1;
	s->acc.maxpend = IPC_MAXPFD - 1;
	s->pefd_data = s->pefd_room = -1;
}

/* Release everything a channel holds, except the close flags. */
static void
chan_free(struct shm_chan *s)
{
	list_del(s);
	if (s->seg != NULL) {
		munmap(s->seg, s->seg_len);
		s->seg = NULL;
	}
	acc_close(&s->acc);
	close_fd(&s->pefd_data);
	close_fd(&s->pefd_room);
	ipc__rchan_free(&s->rc);
}

/* Map a segment and bind both rings as end `end`. */
static int
map_segment(struct shm_chan *s, int memfd, size_t ring_size, int end)
{
	size_t len = seg_len_for(ring_size);
	void *m =
	        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (m == MAP_FAILED) {
		return ipc__errno(-errno, s->rc.uri, "mmap of %zu bytes", len);
	}
	s->seg = m;
	s->seg_len = len;
	s->rc.ring_size = ring_size;
	s->end = end;
	/* Our copy of the size decides the layout, not the header. */
	size_t stride = page_round(ipc_ring_region_size(ring_size));
	unsigned char *base = (unsigned char *)m + SEG_HDR;
	int r = ipc_ring_attach(&s->rc.tx, base + (size_t)end * stride,
	                        ring_size, IPC_RING_PRODUCER,
	                        &ipc__rchan_ring_ops, &s->rc);
	if (r == 0) {
		r = ipc_ring_attach(&s->rc.rx,
		                    base + (size_t)(1 - end) * stride,
		                    ring_size, IPC_RING_CONSUMER,
		                    &ipc__rchan_ring_ops, &s->rc);
	}
	if (r < 0) {
		munmap(m, len);
		s->seg = NULL;
		return ipc__err(
		        -EPROTO, s->rc.uri,
		        "the peer's segment does not hold valid rings");
	}
	return 0;
}

/* Create a sealed memfd with both rings formatted, and 4 eventfds.
 * fds[0] = memfd, fds[1..2] = end 0 data/room, fds[3..4] = end 1. */
static int
make_segment(size_t ring_size, unsigned mode, const char *name,
             const char *uri, int fds[NFDS])
{
	char label[64];
	size_t len = seg_len_for(ring_size);
	for (int i = 0; i < NFDS; i++) {
		fds[i] = -1;
	}
	snprintf(label, sizeof(label), "libipc-shm:%.40s", name);
	int r = ipc__shm_memfd(label, len, mode, uri, &fds[0]);
	if (r < 0) {
		return r;
	}
	struct shm_seg *seg = mmap(NULL, SEG_HDR, PROT_READ | PROT_WRITE,
	                           MAP_SHARED, fds[0], 0);
	if (seg == MAP_FAILED) {
		r = ipc__errno(-errno, uri, "mmap of the segment header");
		goto fail;
	}
	seg->magic = SEG_MAGIC;
	seg->version = IPC_SHM_VERSION;
	seg->ring_size = ring_size;
	seg->seg_len = len;
	atomic_store(&seg->holders[0], 1);
	atomic_store(&seg->holders[1], 1);
	munmap(seg, SEG_HDR);
	/* Format the rings through a full mapping. */
	unsigned char *m =
	        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (m == MAP_FAILED) {
		r = ipc__errno(-errno, uri, "mmap of %zu bytes", len);
		goto fail;
	}
	size_t stride = page_round(ipc_ring_region_size(ring_size));
	ipc_ring_format(m + SEG_HDR, ring_size);
	ipc_ring_format(m + SEG_HDR + stride, ring_size);
	munmap(m, len);
	for (int i = 1; i < NFDS; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[i] < 0) {
			r = ipc__errno(-errno, uri, "eventfd");
			goto fail;
		}
	}
	return 0;
fail:
	for (int i = 0; i < NFDS; i++) {
		close_fd(&fds[i]);
	}
	return r;
}

/* Take the eventfds of end `end` (and the peer's) from fds[1..4]. */
static void
take_efds(struct shm_chan *s, int fds[NFDS], int end)
{
	int me = 1 + 2 * end, peer = 1 + 2 * (1 - end);
	s->rc.efd_data = fds[me];
	s->rc.efd_room = fds[me + 1];
	s->pefd_data = fds[peer];
	s->pefd_room = fds[peer + 1];
	fds[me] = fds[me + 1] = fds[peer] = fds[peer + 1] = -1;
}

/* Keep ipc_fd()'s epoll set in step with the connection state. */
static void
epoll_update(struct shm_chan *s)
{
	ipc__rchan_epoll_add(&s->rc, s->acc.lsock, EPOLLIN);
	for (int i = 0; i < s->acc.npend; i++) {
		ipc__rchan_epoll_add(&s->rc, s->acc.pend[i],
		                     EPOLLIN | EPOLLRDHUP);
	}
	ipc__rchan_epoll_update(&s->rc);
}

static void
hello_init(struct ipc_shm_hello *h, size_t ring_size, const char *name)
{
	memset(h, 0, sizeof(*h));
	h->magic = IPC_SHM_HELLO_MAGIC;
	h->version = IPC_SHM_VERSION;
	h->ring_size = ring_size;
	h->seg_len = seg_len_for(ring_size);
	snprintf(h->name, sizeof(h->name), "%s", name);
}

/* Server side: read a client's hello from conn, check it and map its
 * segment as end 1.  -EAGAIN: not there yet (the client sends it right
 * after connecting).  Other errors: refuse the client. */
static int
recv_hello(struct shm_chan *s, int conn)
{
	struct ipc_shm_hello h;
	int fds[NFDS], nfd = 0, ctrunc;
	memset(&h, 0, sizeof(h));
	ssize_t n = ipc__shm_recvfds(conn, &h, sizeof(h), fds, NFDS, &nfd,
	                             &ctrunc);
	if (n < 0) {
		if (n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR) {
			return -EAGAIN;
		}
		return ipc__errno((int)-EPIPE, s->rc.uri,
		                  "a client went away");
	}
	if (n == 0) {
		return ipc__err(-EPIPE, s->rc.uri,
		                "a client went away before its hello");
	}
	int r = 0;
	if ((size_t)n != sizeof(h) || h.magic != IPC_SHM_HELLO_MAGIC ||
	    h.version != IPC_SHM_VERSION || h.status != 0) {
		r = ipc__err(-EPROTO, s->rc.uri,
		             "a client's hello is not a libipc shm hello");
		goto fail;
	}
	h.name[sizeof(h.name) - 1] = '\0';
	if (strcmp(h.name, s->name) != 0) {
		r = ipc__err(-ECONNREFUSED, s->rc.uri,
		             "a client asked for another name ('%.60s') that "
		             "shares this address",
		             h.name);
		goto fail;
	}
	if (ctrunc && nfd < NFDS) {
		/* The kernel truncates the descriptors it cannot install:
		 * at our own descriptor limit, that is our failure to
		 * report, not the client's. */
		int t = fcntl(conn, F_DUPFD_CLOEXEC, 0);
		if (t < 0 && (errno == EMFILE || errno == ENFILE)) {
			r = ipc__errno(-errno, s->rc.uri,
			               "cannot receive a client's %d "
			               "descriptors (got %d)",
			               NFDS, nfd);
			goto fail;
		}
		if (t >= 0) {
			close(t);
		}
	}
	if (ctrunc || nfd != NFDS) {
		r = ipc__err(-EPROTO, s->rc.uri,
		             "a client's hello carries %d descriptors, not %d",
		             nfd, NFDS);
		goto fail;
	}
	if (!ipc_ring_size_ok(h.ring_size) ||
	    h.seg_len != seg_len_for(h.ring_size)) {
		r = ipc__err(-EPROTO, s->rc.uri,
		             "a client's ring size %llu is not valid",
		             (unsigned long long)h.ring_size);
		goto fail;
	}
	if (s->size_set && h.ring_size != s->rc.ring_size) {
		r = ipc__err(-EINVAL, s->rc.uri,
		             "a client's ring size %llu differs from size=%zu",
		             (unsigned long long)h.ring_size, s->rc.ring_size);
		goto fail;
	}
	/* The memfd must be exactly as long as said, and unable to shrink
	 * under our mapping (which would make our reads fault). */
	if (!ipc__shm_memfd_ok(fds[0], h.seg_len)) {
		r = ipc__err(-EPROTO, s->rc.uri,
		             "a client's segment is not a sealed memfd of "
		             "%llu bytes",
		             (unsigned long long)h.seg_len);
		goto fail;
	}
	for (int i = 1; i < NFDS; i++) {
		int fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0) {
			r = ipc__errno(-EPROTO, s->rc.uri,
			               "a client's eventfd is unusable");
			goto fail;
		}
	}
	r = map_segment(s, fds[0], (size_t)h.ring_size, 1);
	if (r < 0) {
		goto fail;
	}
	close_fd(&fds[0]);
	take_efds(s, fds, 1);
	s->rc.live_fd = conn;
	return 0;
fail:
	close_fds(fds, nfd);
	return r;
}

static void
acc_forget(struct acceptor *a, int i, int epfd)
{
	ipc__epoll_del(epfd, a->pend[i]);
	a->pend[i] = a->pend[--a->npend];
}

/* Serve one client from a's listening socket or its pending connections
 * (connected, hello not read yet).  0: s is connected; -EAGAIN: nobody
 * ready.  epfd: the epoll set that mirrors a (or -1). */
static int
acc_serve(struct acceptor *a, struct shm_chan *s, int epfd)
{
	for (int i = 0; i < a->npend;) {
		int conn = a->pend[i];
		int r = recv_hello(s, conn);
		if (r == 0) {
			acc_forget(a, i, epfd);
			return 0;
		}
		if (r == -EAGAIN) {
			i++;
			continue;
		}
		ipc__shm_refuse(conn, -r);
		acc_forget(a, i, epfd);
		close(conn);
		if (r == -EMFILE || r == -ENFILE) {
			return r; /* ours, not the client's: say so */
		}
	}
	for (;;) {
		int conn = accept4(a->lsock, NULL, NULL,
		                   SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK ||
			    errno == EINTR || errno == ECONNABORTED) {
				return -EAGAIN;
			}
			return ipc__errno(-errno, s->rc.uri, "accept");
		}
		int r = ipc__shm_peer_allowed(conn, s->mode, &s->trust, 1,
		                              s->rc.uri);
		if (r == 0) {
			r = recv_hello(s, conn);
		}
		if (r == 0) {
			return 0;
		}
		if (r == -EAGAIN && a->npend < a->maxpend) {
			a->pend[a->npend++] = conn;
			ipc__epoll_add(epfd, conn, EPOLLIN | EPOLLRDHUP);
			continue;
		}
		/* Refused, or too many half-open: keep serving others. */
		ipc__shm_refuse(conn, r == -EAGAIN ? EBUSY : -r);
		close(conn);
		if (r == -EMFILE || r == -ENFILE) {
			return r; /* ours, not the client's: say so */
		}
		if (r == -EACCES && s->trust.given) {
			/* allow_uid= refused it: said once, still
			 * listening (mode= refusals stay silent). */
			return -EACCES;
		}
	}
}

/* Connect an IPC_CREATE channel if a peer has come: non-blocking. */
static int
connect_slow(ipc_channel *ch, struct shm_chan *s)
{
	pthread_mutex_lock(&s->rc.lock);
	int st = atomic_load(&s->state), r = 0;
	if (st == ST_READY) {
		goto out;
	}
	if (st == ST_FAILED) {
		r = ipc__err(s->failed, s->rc.uri,
		             "the channel failed earlier");
		goto out;
	}
	r = acc_serve(&s->acc, s, s->rc.epfd);
	if (r == -EAGAIN || r == -EACCES) {
		goto out; /* a refused peer: others may come */
	}
	/* One peer per IPC_CREATE channel: stop listening, so that the
	 * name is free and later openers are refused. */
	for (int i = 0; i < s->acc.npend; i++) {
		ipc__epoll_del(s->rc.epfd, s->acc.pend[i]);
		ipc__shm_refuse(s->acc.pend[i], ECONNREFUSED);
	}
	ipc__epoll_del(s->rc.epfd, s->acc.lsock);
	acc_close(&s->acc);
	if (r < 0) {
		s->failed = r;
		atomic_store(&s->state, ST_FAILED);
		goto out;
	}
	ch->max_msg = ipc_ring_max_msg(s->rc.ring_size);
	list_add(s);
	epoll_update(s);
	atomic_store(&s->state, ST_READY);
	ipc__rchan_attached(&s->rc);
out:
	pthread_mutex_unlock(&s->rc.lock);
	return r;
}

static inline int
ensure_ready(ipc_channel *ch, struct shm_chan *s)
{
	if (__builtin_expect(
	            atomic_load_explicit(&s->state, memory_order_acquire) ==
	                    ST_READY,
	            1)) {
		return 0;
	}
	return connect_slow(ch, s);
}

/* Look at the socket without waiting: has the peer gone?  Nothing but
 * the hello is ever sent on it, so readable means gone (a server that
 * refused us sent its reason first). */
static int
shm_check_alive(struct ipc_rchan *c)
{
	struct shm_chan *s = (struct shm_chan *)c;
	if (atomic_load(&c->dead)) {
		return 0;
	}
	struct pollfd p = {.fd = c->live_fd, .events = POLLIN | POLLRDHUP};
	if (poll(&p, 1, 0) > 0 &&
	    (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))) {
		int st = ipc__shm_read_refusal(c->live_fd);
		if (st > 0) {
			s->refused = st;
		}
		atomic_store(&c->dead, 1);
		return 0;
	}
	return 1;
}

/* The error for a peer that is gone. */
static int
shm_gone_err(struct ipc_rchan *c, const char *uri)
{
	struct shm_chan *s = (struct shm_chan *)c;
	if (s->refused) {
		return ipc__err(-s->refused, uri,
		                "the server refused this client: %s",
		                strerror(s->refused));
	}
	return ipc__err(-EPIPE, uri, "the peer died");
}

/* ---------------------------------------------------------- the slots -- */

static ssize_t
shm_send(ipc_channel *ch, const void *buf, size_t len)
{
	if (ch->role) {
		return ipc__fan_send(ch, fan(ch), buf, len);
	}
	struct shm_chan *s = ipc__priv(ch);
	int r = ensure_ready(ch, s);
	if (r < 0) {
		return r;
	}
	return ipc__rchan_send(ch, &s->rc, buf, len);
}

static ssize_t
shm_recv(ipc_channel *ch, void *buf, size_t cap)
{
	if (ch->role) {
		return ipc__fan_recv(ch, fan(ch), buf, cap);
	}
	struct shm_chan *s = ipc__priv(ch);
	int r = ensure_ready(ch, s);
	if (r < 0) {
		return r;
	}
	return ipc__rchan_recv(ch, &s->rc, buf, cap);
}

static int
shm_reserve(ipc_channel *ch, size_t len, void **buf)
{
	if (ch->role) {
		return ipc__fan_reserve(ch, fan(ch), len, buf);
	}
	struct shm_chan *s = ipc__priv(ch);
	int r = ensure_ready(ch, s);
	if (r < 0) {
		return r;
	}
	return ipc__rchan_reserve(ch, &s->rc, len, buf);
}

static int
shm_commit(ipc_channel *ch, size_t len)
{
	if (ch->role) {
		return ipc__fan_commit(ch, fan(ch), len);
	}
	struct shm_chan *s = ipc__priv(ch);
	return ipc__rchan_commit(ch, &s->rc, len);
}

static int
shm_acquire(ipc_channel *ch, const void **buf, size_t *len)
{
	if (ch->role) {
		return ipc__fan_acquire(ch, fan(ch), buf, len);
	}
	struct shm_chan *s = ipc__priv(ch);
	int r = ensure_ready(ch, s);
	if (r < 0) {
		return r;
	}
	return ipc__rchan_acquire(ch, &s->rc, buf, len);
}

static int
shm_release(ipc_channel *ch)
{
	if (ch->role) {
		return ipc__fan_release(ch, fan(ch));
	}
	struct shm_chan *s = ipc__priv(ch);
	return ipc__rchan_release(ch, &s->rc);
}

/* The descriptors of an IPC_CREATE channel still waiting for its peer. */
static int
acc_pollfds(struct shm_chan *s, struct pollfd *p)
{
	int n = 0;
	pthread_mutex_lock(&s->rc.lock);
	if (s->acc.lsock >= 0) {
		p[n].fd = s->acc.lsock;
		p[n++].events = POLLIN;
		for (int i = 0; i < s->acc.npend && n < IPC_MAXPFD; i++) {
			p[n].fd = s->acc.pend[i];
			p[n++].events = POLLIN;
		}
	}
	pthread_mutex_unlock(&s->rc.lock);
	return n;
}

static int
shm_wait(ipc_channel *ch, short events, const struct timespec *deadline)
{
	if (ch->role) {
		return ipc__fan_wait(ch, fan(ch), events, deadline);
	}
	struct shm_chan *s = ipc__priv(ch);
	int st = atomic_load(&s->state);
	if (st == ST_FAILED) {
		return 0;
	}
	if (st != ST_READY) {
		/* IPC_CREATE: waiting for the peer to connect. */
		struct pollfd p[IPC_MAXPFD];
		int n = acc_pollfds(s, p);
		if (n == 0 || atomic_load(&s->state) != st) {
			return 0;
		}
		if (poll(p, (nfds_t)n, ipc__remaining_ms(deadline)) == 0) {
			return -ETIMEDOUT;
		}
		return 0;
	}
	return ipc__rchan_wait(&s->rc, events, deadline);
}

static int
shm_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	if (ch->role) {
		return ipc__fan_pollfds(ch, fan(ch), events, pfd, retry_ms);
	}
	struct shm_chan *s = ipc__priv(ch);
	int st = atomic_load(&s->state);
	if (st == ST_FAILED) {
		*retry_ms = 0;
		return 0;
	}
	if (st != ST_READY) {
		int n = acc_pollfds(s, pfd);
		if (n == 0 || atomic_load(&s->state) != st) {
			*retry_ms = 0;
		}
		return n;
	}
	return ipc__rchan_pollfds(&s->rc, events, pfd, retry_ms);
}

static short
shm_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	if (ch->role) {
		return ipc__fan_ready(ch, fan(ch), events, pfd, npfd);
	}
	struct shm_chan *s = ipc__priv(ch);
	int st = atomic_load(&s->state);
	if (st != ST_READY && st != ST_FAILED) {
		int go = pfd == NULL;
		for (int i = 0; i < npfd; i++) {
			go |= pfd[i].revents != 0;
		}
		if (go) {
			connect_slow(ch, s);
		}
		st = atomic_load(&s->state);
	}
	if (st == ST_FAILED) {
		/* Calls fail at once; a server that went away is a hang-up. */
		return (s->failed == -EPIPE ? IPC_POLLHUP : IPC_POLLERR) |
		       (events & (IPC_POLLIN | IPC_POLLOUT));
	}
	if (st != ST_READY) {
		return 0;
	}
	return ipc__rchan_ready(&s->rc, events, pfd, npfd);
}

static int
shm_fd(const ipc_channel *ch)
{
	if (ch->role) {
		return ipc__fan_fd((struct ipc_fanchan *)ipc__cpriv(ch));
	}
	/* The channel is not const in the caller's hands: ipc_fd makes
	 * the descriptor on first use. */
	struct shm_chan *s = (struct shm_chan *)ipc__cpriv(ch);
	pthread_mutex_lock(&s->rc.lock);
	int fresh = s->rc.epfd < 0;
	int fd = ipc__rchan_fd_locked(&s->rc,
	                              atomic_load(&s->state) == ST_READY);
	if (fd >= 0 && fresh) {
		epoll_update(s); /* the acceptor's descriptors too */
	}
	pthread_mutex_unlock(&s->rc.lock);
	return fd;
}

static int
shm_close(ipc_channel *ch)
{
	if (ch->role) {
		return ipc__fan_close(ch, fan(ch));
	}
	struct shm_chan *s = ipc__priv(ch);
	list_del(s);
	if (atomic_load(&s->state) == ST_READY &&
	    atomic_fetch_sub(&s->seg->holders[s->end], 1) == 1) {
		/* The last holder of this end: tell the peer. */
		ipc__rchan_close(&s->rc);
	}
	chan_free(s);
	return 0;
}

/* ------------------------------------------------------ open and pair -- */

static int
shm_open_chan(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	struct shm_chan *s = ipc__priv(ch);
	int fds[NFDS] = {-1, -1, -1, -1, -1};
	if (flags & (IPC_PUBLISH | IPC_SUBSCRIBE)) {
		size_t size;
		int size_set;
		uint64_t spin;
		unsigned mode;
		int r = parse_opts(u, flags, &size, &size_set, &spin, &mode);
		return r < 0 ? r
		             : ipc__fan_open(ch, fan(ch), u, flags, spin,
		                             mode);
	}
	chan_init(s, ch->uri);
	int r = parse_opts(u, flags, &s->rc.ring_size, &s->size_set,
	                   &s->rc.spin_ns, &s->mode);
	if (r == 0) {
		/* Abstract names are anybody's: an opener checks. */
		r = ipc__trust_parse(&s->trust, u, !(flags & IPC_CREATE));
	}
	if (r < 0) {
		goto fail;
	}
	snprintf(s->name, sizeof(s->name), "%s", u->name);
	ch->max_msg = ipc_ring_max_msg(s->rc.ring_size);
	if (flags & IPC_CREATE) {
		r = ipc__shm_bind(s->name, u->text, &s->acc.lsock);
		if (r < 0) {
			goto fail;
		}
		atomic_store(&s->state, ST_WAIT_PEER);
		return 0;
	}
	/* The opener makes the segment and sends it with its connection,
	 * so it can send at once, before the server accepts. */
	r = ipc__shm_connect(s->name, u->text, &s->rc.live_fd);
	if (r < 0) {
		goto fail;
	}
	r = ipc__shm_peer_allowed(s->rc.live_fd, s->mode, &s->trust, 0,
	                          u->text);
	if (r < 0) {
		goto fail;
	}
	r = make_segment(s->rc.ring_size, s->mode, s->name, u->text, fds);
	if (r < 0) {
		goto fail;
	}
	r = map_segment(s, fds[0], s->rc.ring_size, 0);
	if (r < 0) {
		goto fail;
	}
	struct ipc_shm_hello h;
	hello_init(&h, s->rc.ring_size, s->name);
	r = ipc__shm_sendfds(s->rc.live_fd, &h, sizeof(h), fds, NFDS);
	if ((r == -EPIPE || r == -ECONNRESET) && !shm_check_alive(&s->rc) &&
	    s->refused) {
		/* The server refused us before the hello went: like a
		 * refusal after it, the first call reports it. */
		r = 0;
	}
	if (r < 0) {
		r = ipc__errno(r == -EAGAIN ? -ECONNREFUSED : r, u->text,
		               "sending the segment to the server");
		goto fail;
	}
	close_fd(&fds[0]);
	take_efds(s, fds, 0);
	list_add(s);
	atomic_store(&s->state, ST_READY);
	return 0;
fail:
	close_fds(fds, NFDS);
	chan_free(s);
	return r;
}

static int
shm_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct shm_chan *sa = ipc__priv(a), *sb = ipc__priv(b);
	int fds[NFDS], sv[2], r;
	size_t size;
	int size_set;
	uint64_t spin;
	unsigned mode;
	chan_init(sa, a->uri);
	chan_init(sb, b->uri);
	r = parse_opts(u, 0, &size, &size_set, &spin, &mode);
	if (r < 0) {
		goto fail_init;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               0, sv) < 0) {
		r = ipc__errno(-errno, u->text, "socketpair");
		goto fail_init;
	}
	sa->rc.live_fd = sv[0];
	sb->rc.live_fd = sv[1];
	r = make_segment(size, mode, "pair", u->text, fds);
	if (r < 0) {
		goto fail_init;
	}
	sa->rc.spin_ns = sb->rc.spin_ns = spin;
	sa->mode = sb->mode = mode;
	r = map_segment(sa, fds[0], size, 0);
	if (r == 0) {
		r = map_segment(sb, fds[0], size, 1);
	}
	close_fd(&fds[0]);
	if (r < 0) {
		close_fds(fds, NFDS);
		goto fail_init;
	}
	take_efds(sa, fds, 0);
	/* Both ends need the eventfds of both: duplicate for b. */
	sb->rc.efd_data = fcntl(sa->pefd_data, F_DUPFD_CLOEXEC, 0);
	sb->rc.efd_room = fcntl(sa->pefd_room, F_DUPFD_CLOEXEC, 0);
	sb->pefd_data = fcntl(sa->rc.efd_data, F_DUPFD_CLOEXEC, 0);
	sb->pefd_room = fcntl(sa->rc.efd_room, F_DUPFD_CLOEXEC, 0);
	if (sb->rc.efd_data < 0 || sb->rc.efd_room < 0 || sb->pefd_data < 0 ||
	    sb->pefd_room < 0) {
		r = ipc__errno(-errno, u->text, "dup of an eventfd");
		goto fail_init;
	}
	a->max_msg = b->max_msg = ipc_ring_max_msg(size);
	list_add(sa);
	list_add(sb);
	atomic_store(&sa->state, ST_READY);
	atomic_store(&sb->state, ST_READY);
	return 0;
fail_init:
	chan_free(sa);
	chan_free(sb);
	return r;
}

/* ------------------------------------------------------------ listener -- */

static int
shm_listen(ipc_listener *l, const struct ipc_uri *u, int flags)
{
	struct shm_listener *sl = ipc__lpriv(l);
	(void)flags;
	sl->acc.lsock = -1;
	sl->acc.maxpend = MAXPEND;
	sl->epfd = -1;
	int r = parse_opts(u, 0, &sl->ring_size, &sl->size_set, &sl->spin_ns,
	                   &sl->mode);
	if (r == 0) {
		r = ipc__trust_parse(&sl->trust, u, 0);
	}
	if (r < 0) {
		return r;
	}
	snprintf(sl->name, sizeof(sl->name), "%s", u->name);
	r = ipc__shm_bind(sl->name, u->text, &sl->acc.lsock);
	if (r < 0) {
		return r;
	}
	/* Clients whose hello is late wait in the epoll set too, so the
	 * listener's descriptor covers them. */
	sl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sl->epfd < 0) {
		r = ipc__errno(-errno, u->text, "epoll_create1");
		close_fd(&sl->acc.lsock);
		return r;
	}
	ipc__epoll_add(sl->epfd, sl->acc.lsock, EPOLLIN);
	return 0;
}

static int
shm_accept(ipc_listener *l, ipc_channel *ch)
{
	struct shm_listener *sl = ipc__lpriv(l);
	struct shm_chan *s = ipc__priv(ch);
	chan_init(s, ch->uri);
	s->rc.ring_size = sl->ring_size;
	s->size_set = sl->size_set;
	s->rc.spin_ns = sl->spin_ns;
	s->mode = sl->mode;
	s->trust = sl->trust;
	snprintf(s->name, sizeof(s->name), "%s", sl->name);
	int r = acc_serve(&sl->acc, s, sl->epfd);
	if (r < 0) {
		chan_free(s);
		return r;
	}
	ch->max_msg = ipc_ring_max_msg(s->rc.ring_size);
	list_add(s);
	atomic_store(&s->state, ST_READY);
	return 0;
}

static int
shm_subscribers(const ipc_channel *ch)
{
	return ipc__fan_subscribers((struct ipc_fanchan *)ipc__cpriv(ch));
}

static unsigned long long
shm_dropped(const ipc_channel *ch)
{
	return ipc__fan_dropped(ipc__cpriv(ch));
}

static int
shm_listener_fd(const ipc_listener *l)
{
	const struct shm_listener *sl = ipc__clpriv(l);
	return sl->epfd;
}

static int
shm_listener_close(ipc_listener *l)
{
	struct shm_listener *sl = ipc__lpriv(l);
	acc_close(&sl->acc);
	close_fd(&sl->epfd);
	return 0;
}

static int
shm_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	if (ch->role) {
		return ipc__err(
		        -EOPNOTSUPP, ch->uri,
		        "peer_cred: a publish/subscribe end has many peers");
	}
	const struct shm_chan *s = ipc__cpriv(ch);
	int ready = atomic_load(&s->state) != ST_WAIT_PEER;

	/* The rendezvous socket stays for the channel's life. */
	return ipc__sock_peer_cred(ready ? s->rc.live_fd : -1, ch->uri, pid,
	                           uid, gid);
}

const struct ipc_driver ipc_driver_shm = {
        .scheme = "shm",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_ZEROCOPY |
                IPC_CAP_LISTEN | IPC_CAP_PEERCLOSE | IPC_CAP_PUBSUB,
        .addr = IPC_ADDR_NAME,
        .opts = shm_opts,
        .priv_size = SHM_PRIV_SIZE,
        .lpriv_size = sizeof(struct shm_listener),
        .open = shm_open_chan,
        .pair = shm_pair,
        .send = shm_send,
        .recv = shm_recv,
        .close = shm_close,
        .pollfds = shm_pollfds,
        .ready = shm_ready,
        .wait = shm_wait,
        .reserve = shm_reserve,
        .commit = shm_commit,
        .acquire = shm_acquire,
        .release = shm_release,
        .fd = shm_fd,
        .peer_cred = shm_peer_cred,
        .listen = shm_listen,
        .accept = shm_accept,
        .listener_fd = shm_listener_fd,
        .listener_close = shm_listener_close,
        .subscribers = shm_subscribers,
        .dropped = shm_dropped,
};
