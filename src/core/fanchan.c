/*
 * shm:// publish/subscribe channels (fanchan.h).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fanchan.h"
#include "ringchan.h"
#include "shmrdv.h"

#define REQ_MAGIC  0x71666e61u /* "anfq" */
#define REP_MAGIC  0x72666e61u /* "anfr" */
#define DEF_SLOTS  64u
#define DEF_MAXMSG (1u << 20)
#define DEF_SUBS   256u

/* epoll data: what a descriptor of the publisher's set is. */
#define EV_LISTEN 0ull
#define EV_PEND   (1ull << 32)
#define EV_SUB    (2ull << 32)

enum { ST_WAIT, ST_READY, ST_FAILED };

/* Subscriber -> publisher, once. */
struct fan_req {
	uint32_t magic;
	uint32_t version;
	uint32_t drop; /* 0 block, 1 drop, 2 as the publisher says */
	uint32_t history;
	char name[208];
};

/* Publisher -> subscriber, once, with the memfd, the subscriber's
 * eventfd and the publisher's "room" eventfd. */
struct fan_rep {
	uint32_t magic;
	uint32_t version;
	int32_t status;
	uint32_t drop; /* the subscriber's policy */
	uint64_t index;
	uint64_t nslots, slot_size, max_subs, region;
};

static void
close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static void
kick(int fd)
{
	uint64_t one = 1;
	ssize_t n = write(fd, &one, sizeof(one));
	(void)n; /* EAGAIN: already readable */
}

static void
drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n;
}

static void
fan_notify(void *ctx, long who)
{
	struct ipc_fanchan *f = ctx;
	if (who < 0) {
		kick(f->pub_room_efd);
	} else if ((uint64_t)who < f->g.max_subs && f->peers[who].efd >= 0) {
		kick(f->peers[who].efd);
	}
}

static const struct ipc_fan_ops fan_ops = {.notify = fan_notify};

static void
fan_init(struct ipc_fanchan *f, const char *uri)
{
	memset(f, 0, sizeof(*f));
	f->uri = uri;
	f->lsock = f->ep = f->room_efd = f->memfd = -1;
	f->sock = f->efd = f->pub_room_efd = f->epfd = -1;
	pthread_mutex_init(&f->lock, NULL);
}

static void
fan_free(struct ipc_fanchan *f)
{
	if (f->peers != NULL) {
		for (uint64_t i = 0; i < f->g.max_subs; i++) {
			close_fd(&f->peers[i].sock);
			close_fd(&f->peers[i].efd);
		}
		free(f->peers);
		f->peers = NULL;
	}
	for (int i = 0; i < f->npend; i++) {
		close_fd(&f->pend[i]);
	}
	f->npend = 0;
	ipc_fan_pub_free(&f->pub);
	if (f->mem != NULL) {
		munmap(f->mem, f->mem_len);
		f->mem = NULL;
	}
	close_fd(&f->lsock);
	close_fd(&f->ep);
	close_fd(&f->room_efd);
	close_fd(&f->memfd);
	close_fd(&f->sock);
	close_fd(&f->efd);
	close_fd(&f->pub_room_efd);
	close_fd(&f->epfd);
	pthread_mutex_destroy(&f->lock);
}

/* ----------------------------------------------------------- publisher -- */

static void
evict(struct ipc_fanchan *f, long i)
{
	ipc__epoll_del(f->ep, f->peers[i].sock);
	close_fd(&f->peers[i].sock);
	close_fd(&f->peers[i].efd);
	ipc_fan_evict(&f->pub, i);
}

/* Read a subscriber's request from conn and take it in.  -EAGAIN: not
 * there yet.  Otherwise conn is used up (kept or refused and closed). */
static int
serve(struct ipc_fanchan *f, int conn)
{
	union {
		struct fan_req q;
		struct ipc_shm_hello h; /* a one-to-one opener's hello */
	} m;
	int fds[IPC_SHM_MAXFDS], nfd, tr;
	memset(&m, 0, sizeof(m));
	ssize_t n = ipc__shm_recvfds(conn, &m, sizeof(m), fds, IPC_SHM_MAXFDS,
	                             &nfd, &tr);
	for (int i = 0; i < nfd; i++) {
		close(fds[i]);
	}
	if (n == -EAGAIN || n == -EINTR) {
		return -EAGAIN;
	}
	int err = 0;
	if (n != (ssize_t)sizeof(m.q) || m.q.magic != REQ_MAGIC ||
	    m.q.version != IPC_SHM_VERSION || nfd != 0 || tr) {
		/* A one-to-one opener, or not libipc. */
		err = n > 0 && m.h.magic == IPC_SHM_HELLO_MAGIC ? ECONNREFUSED
		                                                : EPROTO;
	} else {
		m.q.name[sizeof(m.q.name) - 1] = '\0';
		if (strcmp(m.q.name, f->name) != 0) {
			err = ECONNREFUSED;
		}
	}
	long i = -1;
	int efd = -1;
	int drop = m.q.drop == 2 ? f->drop : m.q.drop != 0;
	if (err == 0) {
		i = ipc_fan_admit(&f->pub, drop, m.q.history);
		if (i < 0) {
			err = EUSERS;
		}
	}
	if (err == 0) {
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (efd < 0) {
			err = errno;
			ipc_fan_evict(&f->pub, i);
		}
	}
	if (err != 0) {
		if (n > 0) {
			ipc__shm_refuse(conn, err);
		}
		close(conn);
		return 0;
	}
	struct fan_rep rep = {
	        .magic = REP_MAGIC,
	        .version = IPC_SHM_VERSION,
	        .drop = (uint32_t)drop,
	        .index = (uint64_t)i,
	        .nslots = f->g.nslots,
	        .slot_size = f->g.slot_size,
	        .max_subs = f->g.max_subs,
	        .region = f->g.region,
	};
	int out[3] = {f->memfd, efd, f->room_efd};
	if (ipc__shm_sendfds(conn, &rep, sizeof(rep), out, 3) < 0) {
		ipc_fan_evict(&f->pub, i);
		close(efd);
		close(conn);
		return 0;
	}
	f->peers[i].sock = conn;
	f->peers[i].efd = efd;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
	                         .data.u64 = EV_SUB | (uint64_t)i};
	epoll_ctl(f->ep, EPOLL_CTL_ADD, conn, &ev);
	return 0;
}

static void
pend_add(struct ipc_fanchan *f, int conn)
{
	if (f->npend == IPC_FANCHAN_MAXPEND) {
		ipc__shm_refuse(conn, EBUSY);
		close(conn);
		return;
	}
	f->pend[f->npend++] = conn;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP,
	                         .data.u64 = EV_PEND | (uint32_t)conn};
	epoll_ctl(f->ep, EPOLL_CTL_ADD, conn, &ev);
}

static void
accept_all(struct ipc_fanchan *f)
{
	for (;;) {
		int conn = accept4(f->lsock, NULL, NULL,
		                   SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (conn < 0) {
			return; /* EAGAIN, or try again next time */
		}
		if (ipc__shm_peer_allowed(conn, f->mode, &f->trust, 1,
		                          f->uri) < 0) {
			ipc__shm_refuse(conn, EACCES);
			close(conn);
			continue;
		}
		if (serve(f, conn) == -EAGAIN) {
			pend_add(f, conn);
		}
	}
}

/* Take in whoever came, let go of whoever left.  Call with f->lock. */
static void
admin(struct ipc_fanchan *f)
{
	struct epoll_event ev[32];
	f->checked_ns = ipc__rchan_now_ns();
	for (;;) {
		int n = epoll_wait(f->ep, ev, 32, 0);
		if (n <= 0) {
			return;
		}
		for (int k = 0; k < n; k++) {
			uint64_t d = ev[k].data.u64;
			if (d == EV_LISTEN) {
				accept_all(f);
			} else if ((d & ~0xffffffffull) == EV_PEND) {
				int conn = (int)(uint32_t)d;
				for (int j = 0; j < f->npend; j++) {
					if (f->pend[j] != conn) {
						continue;
					}
					ipc__epoll_del(f->ep, conn);
					f->pend[j] = f->pend[--f->npend];
					if (serve(f, conn) == -EAGAIN) {
						pend_add(f, conn);
					}
					break;
				}
			} else {
				/* A subscriber never writes after its request:
				 * anything is its close or death. */
				long i = (long)(uint32_t)d;
				if ((uint64_t)i < f->g.max_subs &&
				    f->peers[i].sock >= 0) {
					evict(f, i);
				}
			}
		}
		if (n < 32) {
			return;
		}
	}
}

static inline void
admin_lazy(struct ipc_fanchan *f)
{
	if (ipc__rchan_now_ns() - f->checked_ns >=
	    (uint64_t)IPC_FANCHAN_LAZY_MS * 1000000u) {
		admin(f);
	}
}

static int
pub_open(ipc_channel *ch, struct ipc_fanchan *f, const struct ipc_uri *u)
{
	uint64_t slots = ipc__opt_num(u, "slots", DEF_SLOTS);
	uint64_t maxmsg = ipc__opt_num(u, "maxmsg", DEF_MAXMSG);
	uint64_t subs = ipc__opt_num(u, "subs", DEF_SUBS);
	if (!ipc__opt_isset(u, "slots")) {
		while (slots <= f->history) {
			slots *= 2;
		}
	}
	if ((slots & (slots - 1)) != 0 || slots <= f->history) {
		return ipc__err(-EINVAL, u->text,
		                "slots=%llu must be a power of two above "
		                "history=%u",
		                (unsigned long long)slots, f->history);
	}
	if (ipc_fan_geometry(slots, maxmsg, subs, &f->g) < 0) {
		return ipc__err(
		        -EINVAL, u->text,
		        "slots=%llu of maxmsg=%llu bytes make a segment "
		        "over %llu bytes",
		        (unsigned long long)slots, (unsigned long long)maxmsg,
		        (unsigned long long)IPC_FAN_MAXREGION);
	}
	f->peers = calloc(f->g.max_subs, sizeof(*f->peers));
	if (f->peers == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	for (uint64_t i = 0; i < f->g.max_subs; i++) {
		f->peers[i].sock = f->peers[i].efd = -1;
	}
	char label[64];
	snprintf(label, sizeof(label), "libipc-shm-pub:%.40s", f->name);
	int r = ipc__shm_memfd(label, f->g.region, f->mode, u->text,
	                       &f->memfd);
	if (r < 0) {
		return r;
	}
	void *m = mmap(NULL, f->g.region, PROT_READ | PROT_WRITE, MAP_SHARED,
	               f->memfd, 0);
	if (m == MAP_FAILED) {
		return ipc__errno(-errno, u->text, "mmap of %llu bytes",
		                  (unsigned long long)f->g.region);
	}
	f->mem = m;
	f->mem_len = f->g.region;
	ipc_fan_format(f->mem, &f->g);
	r = ipc_fan_pub_init(&f->pub, f->mem, &f->g, f->history, &fan_ops, f);
	if (r < 0) {
		return ipc__err(r, u->text, "fan-out ring set-up");
	}
	f->room_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->ep = epoll_create1(EPOLL_CLOEXEC);
	if (f->room_efd < 0 || f->ep < 0) {
		return ipc__errno(-errno, u->text, "eventfd or epoll_create1");
	}
	r = ipc__shm_bind(f->name, u->text, &f->lsock);
	if (r < 0) {
		return r;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = EV_LISTEN};
	epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lsock, &ev);
	f->owner = getpid();
	ch->max_msg = (size_t)f->g.slot_size;
	if (f->drop) {
		ch->caps &= ~(unsigned)IPC_CAP_RELIABLE;
	}
	return 0;
}

/* reserve under f->lock: evicts entries that make no sense. */
static int
pub_reserve(struct ipc_fanchan *f, size_t len, void **buf)
{
	uint64_t end = 0;
	for (;;) {
		long bad = -1;
		int r = ipc_fan_reserve(&f->pub, len, buf, &bad);
		if (r == -EAGAIN && f->pub.ndrop == f->pub.nlive) {
			/* Only slow=drop subscribers, which never hold the
			 * publisher back: one is reading the slot wanted
			 * right now (a copy takes microseconds).  Give it
			 * up to 50 ms before saying -EAGAIN. */
			uint64_t now = ipc__rchan_now_ns();
			end = end ? end : now + 50000000ull;
			if (now < end) {
				sched_yield();
				continue;
			}
		}
		if (r != -EPROTO) {
			return r;
		}
		evict(f, bad);
	}
}

ssize_t
ipc__fan_send(ipc_channel *ch, struct ipc_fanchan *f, const void *buf,
              size_t len)
{
	void *p;
	pthread_mutex_lock(&f->lock);
	admin_lazy(f);
	int r = pub_reserve(f, len, &p);
	if (r == 0) {
		memcpy(p, buf, len);
		ipc_fan_commit(&f->pub, len);
	}
	pthread_mutex_unlock(&f->lock);
	if (r < 0 && r != -EAGAIN) {
		return ipc__err(r, ch->uri, "send: %s", strerror(-r));
	}
	return r < 0 ? r : (ssize_t)len;
}

int
ipc__fan_reserve(ipc_channel *ch, struct ipc_fanchan *f, size_t len,
                 void **buf)
{
	pthread_mutex_lock(&f->lock);
	admin_lazy(f);
	int r = pub_reserve(f, len, buf);
	pthread_mutex_unlock(&f->lock);
	if (r < 0 && r != -EAGAIN) {
		return ipc__err(r, ch->uri, "reserve: %s", strerror(-r));
	}
	return r;
}

int
ipc__fan_commit(ipc_channel *ch, struct ipc_fanchan *f, size_t len)
{
	pthread_mutex_lock(&f->lock);
	int r = ipc_fan_commit(&f->pub, len);
	pthread_mutex_unlock(&f->lock);
	if (r < 0) {
		return ipc__err(r, ch->uri,
		                "commit: nothing reserved, or "
		                "longer than reserved");
	}
	return 0;
}

int
ipc__fan_subscribers(struct ipc_fanchan *f)
{
	pthread_mutex_lock(&f->lock);
	admin(f);
	/* A subscriber sends its request right after connecting: give the
	 * ones that connected a moment to be counted. */
	uint64_t end = ipc__rchan_now_ns() + 100000000ull;
	while (f->npend > 0 && ipc__rchan_now_ns() < end) {
		struct pollfd p[IPC_FANCHAN_MAXPEND];
		for (int i = 0; i < f->npend; i++) {
			p[i].fd = f->pend[i];
			p[i].events = POLLIN;
		}
		(void)poll(p, (nfds_t)f->npend, 10);
		admin(f);
	}
	int n = (int)f->pub.nlive;
	pthread_mutex_unlock(&f->lock);
	return n;
}

unsigned long long
ipc__fan_dropped(const struct ipc_fanchan *f)
{
	if (f->role == IPC_SUBSCRIBE) {
		return f->sub.dropped;
	}
	return f->pub.dropped;
}

/* ---------------------------------------------------------- subscriber -- */

static int
sub_open(ipc_channel *ch, struct ipc_fanchan *f, const struct ipc_uri *u)
{
	/* slots=, maxmsg=, subs= are the publisher's: given here, they
	 * must match (so one URI serves both ends). */
	ch->max_msg = (size_t)ipc__opt_num(u, "maxmsg", DEF_MAXMSG);
	f->want_slots = ipc__opt_num(u, "slots", 0);
	f->want_maxmsg =
	        ipc__opt_isset(u, "maxmsg") ? ch->max_msg : UINT64_MAX;
	f->want_subs = ipc__opt_num(u, "subs", 0);
	int r = ipc__shm_connect(f->name, u->text, &f->sock);
	if (r < 0) {
		return r;
	}
	r = ipc__shm_peer_allowed(f->sock, f->mode, &f->trust, 0, u->text);
	if (r < 0) {
		return r;
	}
	struct fan_req q = {.magic = REQ_MAGIC,
	                    .version = IPC_SHM_VERSION,
	                    .drop = f->drop_set ? (uint32_t)f->drop : 2u,
	                    .history = f->history};
	snprintf(q.name, sizeof(q.name), "%s", f->name);
	r = ipc__shm_sendfds(f->sock, &q, sizeof(q), NULL, 0);
	if (r < 0) {
		return ipc__errno(r == -EAGAIN ? -ECONNREFUSED : r, u->text,
		                  "sending the request to the publisher");
	}
	atomic_store(&f->state, ST_WAIT);
	if (f->drop_set && f->drop) {
		ch->caps &= ~(unsigned)IPC_CAP_RELIABLE;
	}
	return 0;
}

static int
sub_failed(struct ipc_fanchan *f, int err, const char *why)
{
	f->failed = ipc__err(err, f->uri, "%s", why);
	atomic_store(&f->state, ST_FAILED);
	return f->failed;
}

/* Read the publisher's reply if it came.  0 ready, -EAGAIN, or the
 * recorded failure. */
static int
sub_connect(ipc_channel *ch, struct ipc_fanchan *f)
{
	pthread_mutex_lock(&f->lock);
	int st = atomic_load(&f->state), r = 0;
	if (st == ST_READY) {
		goto out;
	}
	if (st == ST_FAILED) {
		r = ipc__err(f->failed, f->uri, "the subscription failed");
		goto out;
	}
	union {
		struct fan_rep p;
		struct ipc_shm_hello h;
	} m;
	int fds[3] = {-1, -1, -1}, nfd, tr;
	memset(&m, 0, sizeof(m));
	ssize_t n =
	        ipc__shm_recvfds(f->sock, &m, sizeof(m), fds, 3, &nfd, &tr);
	if (n == -EAGAIN || n == -EINTR) {
		r = -EAGAIN;
		goto out;
	}
	if (n == (ssize_t)sizeof(m.h) && m.h.magic == IPC_SHM_HELLO_MAGIC &&
	    m.h.status > 0 && m.h.status < 4096) {
		r = m.h.status == ECONNREFUSED || m.h.status == EPROTO
		            ? sub_failed(
		                      f, -ECONNREFUSED,
		                      "the server refused the subscription: "
		                      "the name is a one-to-one channel, not "
		                      "a publisher")
		            : sub_failed(f, -m.h.status,
		                         "the publisher refused this "
		                         "subscriber");
		goto close_fds;
	}
	if (n <= 0) {
		r = sub_failed(f, -EPIPE, "the publisher went away");
		goto close_fds;
	}
	struct ipc_fan_geom g;
	if (n != (ssize_t)sizeof(m.p) || m.p.magic != REP_MAGIC ||
	    m.p.version != IPC_SHM_VERSION || m.p.status != 0 || nfd != 3 ||
	    tr ||
	    ipc_fan_geometry(m.p.nslots, m.p.slot_size, m.p.max_subs, &g) <
	            0 ||
	    g.region != m.p.region || m.p.index >= g.max_subs ||
	    !ipc__shm_memfd_ok(fds[0], g.region)) {
		r = sub_failed(
		        f, -EPROTO,
		        "the publisher's reply or segment is not valid");
		goto close_fds;
	}
	if ((f->want_slots != 0 && f->want_slots != g.nslots) ||
	    (f->want_subs != 0 && f->want_subs != g.max_subs) ||
	    (f->want_maxmsg != UINT64_MAX && f->want_maxmsg != g.slot_size)) {
		char why[200];
		snprintf(why, sizeof(why),
		         "the publisher has slots=%llu, maxmsg=%llu, "
		         "subs=%llu: "
		         "the URI's differ",
		         (unsigned long long)g.nslots,
		         (unsigned long long)g.slot_size,
		         (unsigned long long)g.max_subs);
		r = sub_failed(f, -EINVAL, why);
		goto close_fds;
	}
	void *mem = mmap(NULL, g.region, PROT_READ | PROT_WRITE, MAP_SHARED,
	                 fds[0], 0);
	if (mem == MAP_FAILED) {
		r = sub_failed(f, -errno, "mmap of the publisher's segment");
		goto close_fds;
	}
	f->mem = mem;
	f->mem_len = g.region;
	f->g = g;
	f->drop = m.p.drop != 0;
	if (ipc_fan_sub_init(&f->sub, mem, &g, m.p.index, f->drop, &fan_ops,
	                     f) < 0) {
		r = sub_failed(
		        f, -EPROTO,
		        "the publisher's segment holds no fan-out ring");
		goto close_fds;
	}
	if (ipc__fd_setup(fds[1]) < 0 || ipc__fd_setup(fds[2]) < 0) {
		r = sub_failed(f, -EPROTO,
		               "the publisher's eventfds are "
		               "unusable");
		goto close_fds;
	}
	close_fd(&fds[0]);
	f->efd = fds[1];
	f->pub_room_efd = fds[2];
	ch->max_msg = (size_t)g.slot_size;
	if (f->epfd >= 0) {
		ipc__epoll_add(f->epfd, f->efd, EPOLLIN);
		if (ipc_fan_sub_arm(&f->sub)) {
			kick(f->efd);
		}
	}
	atomic_store(&f->state, ST_READY);
	goto out;
close_fds:
	for (int i = 0; i < 3; i++) {
		close_fd(&fds[i]);
	}
out:
	pthread_mutex_unlock(&f->lock);
	return r;
}

static inline int
sub_ready(ipc_channel *ch, struct ipc_fanchan *f)
{
	if (__builtin_expect(
	            atomic_load_explicit(&f->state, memory_order_acquire) ==
	                    ST_READY,
	            1)) {
		return 0;
	}
	return sub_connect(ch, f);
}

/* Has the publisher's socket hung up?  It sends nothing after the reply. */
static int
pub_gone(struct ipc_fanchan *f)
{
	if (atomic_load(&f->dead)) {
		return 1;
	}
	struct pollfd p = {.fd = f->sock, .events = POLLIN | POLLRDHUP};
	if (poll(&p, 1, 0) > 0 && p.revents != 0) {
		atomic_store(&f->dead, 1);
		return 1;
	}
	return 0;
}

/* pub_gone() at most every IPC_FANCHAN_LAZY_MS: a subscriber that finds
 * nothing makes no system call for it. */
static int
pub_gone_lazy(struct ipc_fanchan *f)
{
	uint64_t now = ipc__rchan_now_ns();
	if (atomic_load(&f->dead)) {
		return 1;
	}
	if (now - f->checked_ns < (uint64_t)IPC_FANCHAN_LAZY_MS * 1000000u) {
		return 0;
	}
	f->checked_ns = now;
	return pub_gone(f);
}

int
ipc__fan_acquire(ipc_channel *ch, struct ipc_fanchan *f, const void **buf,
                 size_t *len)
{
	int r = sub_ready(ch, f);
	if (r < 0) {
		return r;
	}
	r = ipc_fan_acquire(&f->sub, buf, len);
	if (r == 0) {
		return 0;
	}
	if (r == -EAGAIN) {
		if (pub_gone_lazy(f)) {
			r = ipc_fan_acquire(&f->sub, buf, len);
			if (r != -EAGAIN) {
				return r == 0 ? 0
				              : ipc__err(r, ch->uri,
				                         "the publisher is "
				                         "gone");
			}
			return ipc__err(-EPIPE, ch->uri, "the publisher died");
		}
		if (f->exported) {
			drain(f->efd);
			if (ipc_fan_sub_arm(&f->sub)) {
				kick(f->efd);
			}
		}
		return -EAGAIN;
	}
	if (r == -EPIPE) {
		return ipc__err(r, ch->uri, "the publisher closed");
	}
	return ipc__err(r, ch->uri,
	                r == -EPROTO ? "the publisher's segment is corrupt"
	                             : "acquire: a message is held already");
}

int
ipc__fan_release(ipc_channel *ch, struct ipc_fanchan *f)
{
	if (atomic_load(&f->state) != ST_READY ||
	    ipc_fan_release(&f->sub) < 0) {
		return ipc__err(-EINVAL, ch->uri, "release: nothing acquired");
	}
	return 0;
}

ssize_t
ipc__fan_recv(ipc_channel *ch, struct ipc_fanchan *f, void *buf, size_t cap)
{
	const void *p;
	size_t n;
	int r = ipc__fan_acquire(ch, f, &p, &n);
	if (r < 0) {
		return r;
	}
	if (n > cap) {
		ipc_fan_unacquire(&f->sub);
		return ipc__err_msgsize(ch->uri, n, cap);
	}
	memcpy(buf, p, n);
	ipc_fan_release(&f->sub);
	return (ssize_t)n;
}

/* ------------------------------------------------------ waits and poll -- */

static uint64_t
slice_end(const struct timespec *deadline, uint64_t *dl)
{
	*dl = UINT64_MAX;
	if (deadline != NULL) {
		*dl = deadline->tv_sec < 0
		              ? 0
		              : (uint64_t)deadline->tv_sec * 1000000000u +
		                        (uint64_t)deadline->tv_nsec;
	}
	uint64_t until =
	        ipc__rchan_now_ns() + (uint64_t)IPC_RCHAN_SLICE_MS * 1000000u;
	return until < *dl ? until : *dl;
}

int
ipc__fan_wait(ipc_channel *ch, struct ipc_fanchan *f, short events,
              const struct timespec *deadline)
{
	(void)events;
	uint64_t dl, until = slice_end(deadline, &dl);
	struct timespec ts = {.tv_sec = (time_t)(until / 1000000000u),
	                      .tv_nsec = (long)(until % 1000000000u)};
	int r;
	if (f->role == IPC_PUBLISH) {
		/* Subscribers that came or went (a dead one may be what
		 * the publisher waits for). */
		pthread_mutex_lock(&f->lock);
		admin_lazy(f);
		pthread_mutex_unlock(&f->lock);
		r = ipc_fan_pub_wait(&f->pub, f->spin_ns, &ts);
	} else if (atomic_load(&f->state) == ST_WAIT) {
		struct pollfd p = {.fd = f->sock, .events = POLLIN};
		r = poll(&p, 1, ipc__remaining_ms(&ts)) == 0 ? -ETIMEDOUT : 0;
	} else if (atomic_load(&f->state) == ST_FAILED ||
	           atomic_load(&f->dead)) {
		return 0;
	} else {
		r = ipc_fan_sub_wait(&f->sub, f->spin_ns, &ts);
		if (r == -ETIMEDOUT && pub_gone(f)) {
			return 0; /* the next acquire says -EPIPE */
		}
	}
	(void)ch;
	return r == -ETIMEDOUT && until >= dl ? -ETIMEDOUT : 0;
}

int
ipc__fan_pollfds(ipc_channel *ch, struct ipc_fanchan *f, short events,
                 struct pollfd *pfd, int *retry_ms)
{
	(void)ch;
	if (f->role == IPC_PUBLISH) {
		pthread_mutex_lock(&f->lock);
		admin(f);
		long bad;
		if ((events & IPC_POLLOUT) && ipc_fan_pub_arm(&f->pub, &bad)) {
			*retry_ms = 0;
		}
		pthread_mutex_unlock(&f->lock);
		pfd[0].fd = f->room_efd;
		pfd[0].events = POLLIN;
		pfd[1].fd = f->ep;
		pfd[1].events = POLLIN;
		/* Eviction of a dead subscriber also frees room. */
		return 2;
	}
	int st = atomic_load(&f->state);
	if (st == ST_FAILED) {
		*retry_ms = 0;
		return 0;
	}
	pfd[0].fd = f->sock;
	pfd[0].events = POLLIN | POLLRDHUP;
	if (st == ST_WAIT) {
		return 1;
	}
	if (ipc_fan_sub_arm(&f->sub)) {
		*retry_ms = 0;
	}
	pfd[1].fd = f->efd;
	pfd[1].events = POLLIN;
	return 2;
}

short
ipc__fan_ready(ipc_channel *ch, struct ipc_fanchan *f, short events,
               const struct pollfd *pfd, int npfd)
{
	if (f->role == IPC_PUBLISH) {
		short out = 0;
		pthread_mutex_lock(&f->lock);
		if (pfd == NULL || (npfd > 1 && pfd[1].revents)) {
			admin(f);
		}
		if (npfd > 0 && pfd[0].revents) {
			drain(f->room_efd);
		}
		long bad;
		if ((events & IPC_POLLOUT) &&
		    ipc_fan_writable(&f->pub, &bad)) {
			out |= IPC_POLLOUT;
			ipc_fan_pub_disarm(&f->pub);
		}
		pthread_mutex_unlock(&f->lock);
		return out;
	}
	int st = atomic_load(&f->state);
	if (st == ST_WAIT && (pfd == NULL || (npfd > 0 && pfd[0].revents))) {
		sub_connect(ch, f);
		st = atomic_load(&f->state);
	}
	if (st == ST_FAILED) {
		return IPC_POLLERR | (events & IPC_POLLIN);
	}
	if (st != ST_READY) {
		return 0;
	}
	if (npfd > 1 && pfd[1].revents && !f->exported) {
		drain(f->efd);
	}
	if (ipc_fan_readable(&f->sub)) {
		return events & IPC_POLLIN;
	}
	if ((pfd == NULL || (npfd > 0 && pfd[0].revents)) && pub_gone(f)) {
		return IPC_POLLHUP | (events & IPC_POLLIN);
	}
	return 0;
}

int
ipc__fan_fd(struct ipc_fanchan *f)
{
	pthread_mutex_lock(&f->lock);
	if (f->role == IPC_PUBLISH) {
		pthread_mutex_unlock(&f->lock);
		return f->ep;
	}
	if (f->epfd < 0) {
		f->epfd = epoll_create1(EPOLL_CLOEXEC);
		if (f->epfd < 0) {
			int r = ipc__errno(-errno, f->uri,
			                   "ipc_fd: epoll_create1");
			pthread_mutex_unlock(&f->lock);
			return r;
		}
		ipc__epoll_add(f->epfd, f->sock, EPOLLIN | EPOLLRDHUP);
		f->exported = 1;
		if (atomic_load(&f->state) == ST_READY) {
			ipc__epoll_add(f->epfd, f->efd, EPOLLIN);
			if (ipc_fan_sub_arm(&f->sub)) {
				kick(f->efd);
			}
		}
	}
	pthread_mutex_unlock(&f->lock);
	return f->epfd;
}

/* ------------------------------------------------------- open, close -- */

int
ipc__fan_open(ipc_channel *ch, struct ipc_fanchan *f, const struct ipc_uri *u,
              int flags, uint64_t spin_ns, unsigned mode)
{
	struct ipc_pubsub_opts o;
	fan_init(f, ch->uri);
	f->role = flags & IPC_PUBLISH ? IPC_PUBLISH : IPC_SUBSCRIBE;
	f->spin_ns = spin_ns;
	f->mode = mode;
	snprintf(f->name, sizeof(f->name), "%s", u->name);
	int r = ipc__pubsub_opts(u, flags, &o);
	if (r == 0 && ipc__opt_isset(u, "size")) {
		r = ipc__err(-EINVAL, u->text,
		             "size= is for one-to-one channels; publish/"
		             "subscribe takes slots= and maxmsg=");
	}
	if (r == 0) {
		r = ipc__trust_parse(&f->trust, u, f->role == IPC_SUBSCRIBE);
	}
	if (r == 0) {
		f->drop = o.drop;
		f->drop_set = ipc__opt_isset(u, "slow");
		f->history = o.history;
		r = f->role == IPC_PUBLISH ? pub_open(ch, f, u)
		                           : sub_open(ch, f, u);
	}
	if (r < 0) {
		fan_free(f);
	}
	return r;
}

int
ipc__fan_close(ipc_channel *ch, struct ipc_fanchan *f)
{
	(void)ch;
	if (f->role == IPC_PUBLISH && f->owner == getpid()) {
		ipc_fan_pub_close(&f->pub);
	}
	fan_free(f);
	return 0;
}
