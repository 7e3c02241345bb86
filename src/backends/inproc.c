/*
 * inproc://NAME: channels between threads of one process.
 *
 * A process-wide registry (one mutex, one list) maps NAME to a pair of
 * rings of src/core/ring.h, one per direction, in private anonymous
 * memory: the same single-producer/single-consumer ring, futex waits and
 * poll arming as shm:// (the glue is src/core/ringchan.c), only without a
 * second process.  send copies into the ring, recv out of it;
 * reserve/commit and acquire/release hand out the ring's own bytes, so
 * they copy nothing (IPC_CAP_ZEROCOPY).
 *
 * The pair owns four eventfds ("data" and "room" of each side, kicked only
 * while that side waits in poll) and one more that turns readable when
 * the opener attaches: the creator's send waits for it.  Both ends live in
 * one process, so the peer is never "gone" without closing, and its close
 * is the rings' close flags.
 *
 * See docs/inproc.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/driver.h"
#include "core/ring.h"
#include "core/ringchan.h"
#include "core/trust.h"

#define INP_DEF_CAPACITY (4ull << 20)
#define INP_SPIN_US      20 /* as shm:// */

enum { EFD_DATA0, EFD_ROOM0, EFD_DATA1, EFD_ROOM1, EFD_ARRIVED, NEFD };

struct inp_pair {
	struct inp_pair *next; /* registry list */
	char *name;            /* NULL for ipc_pair() pairs */
	int registered;
	_Atomic int has_peer; /* side 1 attached */
	int refs;             /* open ends; under reg_lock */
	size_t max_msg, ring_size;
	unsigned char *mem; /* ring 0 (side 0 produces), then ring 1 */
	size_t mem_len;
	int efd[NEFD];
};

struct inp_end {
	struct ipc_rchan rc; /* first: the ringchan callbacks cast back */
	struct inp_pair *pair;
	int side;
};

/* The process-wide registry of named pairs. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct inp_pair *reg_head;

static const struct ipc_optspec inp_opts[] = {
        {"maxmsg", IPC_OPT_SIZE, 1, IPC_RING_MAX - IPC_RING_REC, NULL,
         "largest message, default what capacity carries (4M - 16)"},
        {"capacity", IPC_OPT_SIZE, 1, IPC_RING_MAX, NULL,
         "bytes of each direction's ring, a power of two at least "
         "maxmsg + 16 (default 4M)"},
        {"spin", IPC_OPT_STR, 0, 0, NULL,
         "microseconds to spin before sleeping, or busy (default 20)"},
        {NULL, 0, 0, 0, NULL, NULL},
};

/* ---------------------------------------------------------- ringchan -- */

static void
inp_kick(struct ipc_rchan *c, int peer, enum ipc_ring_role role)
{
	struct inp_end *e = (struct inp_end *)c;
	int side = peer ? 1 - e->side : e->side;
	uint64_t one = 1;
	ssize_t n = write(
	        e->pair->efd[2 * side + (role == IPC_RING_CONSUMER ? 0 : 1)],
	        &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero */
}

/* The peer is a thread of this process: it closes, it never dies alone
 * (its close is the rings' close flags). */
static int
inp_check_alive(struct ipc_rchan *c)
{
	(void)c;
	return 1;
}

static int
inp_gone_err(struct ipc_rchan *c, const char *uri)
{
	(void)c;
	return ipc__err(-EPIPE, uri, "the peer closed");
}

static const struct ipc_rchan_ops inp_rc_ops = {
        .check_alive = inp_check_alive,
        .gone_err = inp_gone_err,
        .kick = inp_kick,
};

/* -------------------------------------------------------------- pairs -- */

static void
pair_free(struct inp_pair *p)
{
	for (int i = 0; i < NEFD; i++) {
		if (p->efd[i] >= 0) {
			close(p->efd[i]);
		}
	}
	if (p->mem != NULL) {
		munmap(p->mem, p->mem_len);
	}
	free(p->name);
	free(p);
}

/* The ring size: capacity rounded up to a power of two, and large enough
 * for maxmsg. */
static void
pair_sizes(struct inp_pair *p, const struct ipc_uri *u)
{
	uint64_t cap = ipc__opt_num(u, "capacity", INP_DEF_CAPACITY);
	uint64_t size = IPC_RING_MIN;

	while (size < cap && size < IPC_RING_MAX) {
		size <<= 1;
	}
	if (ipc__opt_isset(u, "maxmsg")) {
		uint64_t want = ipc__opt_num(u, "maxmsg", 0);
		while (ipc_ring_max_msg(size) < want && size < IPC_RING_MAX) {
			size <<= 1;
		}
		p->max_msg = want;
	} else {
		p->max_msg = ipc_ring_max_msg(size);
	}
	p->ring_size = size;
}

static int
pair_new(const struct ipc_uri *u, struct inp_pair **out)
{
	struct inp_pair *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	for (int i = 0; i < NEFD; i++) {
		p->efd[i] = -1;
	}
	pair_sizes(p, u);
	for (int i = 0; i < NEFD; i++) {
		p->efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[i] < 0) {
			int err = -errno;
			pair_free(p);
			return ipc__errno(err, u->text,
			                  "cannot make its eventfds");
		}
	}
	p->mem_len = 2 * ipc_ring_region_size(p->ring_size);
	p->mem = mmap(NULL, p->mem_len, PROT_READ | PROT_WRITE,
	              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->mem == MAP_FAILED) {
		int err = -errno;
		size_t ring_size = p->ring_size;
		p->mem = NULL;
		pair_free(p);
		return ipc__errno(err, u->text,
		                  "cannot map two rings of %zu bytes",
		                  ring_size);
	}
	(void)ipc_ring_format(p->mem, p->ring_size);
	(void)ipc_ring_format(p->mem + p->mem_len / 2, p->ring_size);
	*out = p;
	return 0;
}

static struct inp_pair *
reg_find(const char *name)
{
	for (struct inp_pair *p = reg_head; p != NULL; p = p->next) {
		if (strcmp(p->name, name) == 0) {
			return p;
		}
	}
	return NULL;
}

static void
reg_remove(struct inp_pair *p)
{
	struct inp_pair **pp = &reg_head;

	while (*pp != NULL && *pp != p) {
		pp = &(*pp)->next;
	}
	if (*pp == p) {
		*pp = p->next;
	}
	p->registered = 0;
}

/* Bind this end to the pair's rings: it produces into ring `side`. */
static int
end_attach(ipc_channel *ch, struct inp_pair *p, int side,
           const struct ipc_uri *u)
{
	struct inp_end *e = ipc__priv(ch);
	unsigned char *ring[2] = {p->mem, p->mem + p->mem_len / 2};
	uint64_t spin;
	int r = ipc__rchan_parse_spin(ipc__opt_str(u, "spin", NULL),
	                              INP_SPIN_US, &spin, u->text);

	if (r < 0) {
		return r;
	}
	ipc__rchan_init(&e->rc, &inp_rc_ops, ch->uri);
	e->pair = p;
	e->side = side;
	e->rc.spin_ns = spin;
	e->rc.ring_size = p->ring_size;
	e->rc.efd_data = p->efd[2 * side];
	e->rc.efd_room = p->efd[2 * side + 1];
	if (ipc_ring_attach(&e->rc.tx, ring[side], p->ring_size,
	                    IPC_RING_PRODUCER, &ipc__rchan_ring_ops,
	                    &e->rc) < 0 ||
	    ipc_ring_attach(&e->rc.rx, ring[1 - side], p->ring_size,
	                    IPC_RING_CONSUMER, &ipc__rchan_ring_ops,
	                    &e->rc) < 0) {
		return ipc__err(-EPROTO, u->text, "cannot attach its rings");
	}
	ch->max_msg = p->max_msg;
	return 0;
}

/* The descriptors are the pair's: the end must not close them. */
static void
end_free(struct inp_end *e)
{
	e->rc.efd_data = e->rc.efd_room = -1;
	ipc__rchan_free(&e->rc);
}

/* Options given to an attaching open must agree with the creator's. */
static int
check_same(const struct ipc_uri *u, const char *key, size_t have)
{
	if (ipc__opt_isset(u, key) && ipc__opt_num(u, key, 0) != have) {
		return ipc__err(-EINVAL, u->text,
		                "%s=%llu differs from the creator's %zu "
		                "(options are set by IPC_CREATE)",
		                key, ipc__opt_num(u, key, 0), have);
	}
	return 0;
}

static int
inp_create(ipc_channel *ch, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err;

	err = pair_new(u, &p);
	if (err < 0) {
		return err;
	}
	p->name = strdup(u->name);
	if (p->name == NULL) {
		pair_free(p);
		return ipc__err(-ENOMEM, u->text, "out of memory");
	}
	err = end_attach(ch, p, 0, u);
	if (err < 0) {
		end_free(ipc__priv(ch));
		pair_free(p);
		return err;
	}
	pthread_mutex_lock(&reg_lock);
	if (reg_find(u->name) != NULL) {
		pthread_mutex_unlock(&reg_lock);
		end_free(ipc__priv(ch));
		pair_free(p);
		return ipc__err(-EEXIST, u->text,
		                "the name is already in use in this process");
	}
	p->registered = 1;
	p->refs = 1;
	p->next = reg_head;
	reg_head = p;
	pthread_mutex_unlock(&reg_lock);
	return 0;
}

static int
inp_attach(ipc_channel *ch, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err = 0;

	pthread_mutex_lock(&reg_lock);
	p = reg_find(u->name);
	if (p == NULL) {
		err = ipc__err(-ENOENT, u->text,
		               "no such channel in this process (its creator "
		               "opens it with IPC_CREATE)");
	} else if (atomic_load(&p->has_peer)) {
		err = ipc__err(-EADDRINUSE, u->text,
		               "the channel already has its peer");
	} else {
		err = check_same(u, "maxmsg", p->max_msg);
		if (err == 0 && ipc__opt_isset(u, "capacity")) {
			struct inp_pair q = {0};
			pair_sizes(&q, u);
			if (q.ring_size != p->ring_size) {
				err = ipc__err(
				        -EINVAL, u->text,
				        "capacity=%llu differs from the "
				        "creator's %zu (options are set "
				        "by IPC_CREATE)",
				        ipc__opt_num(u, "capacity", 0),
				        p->ring_size);
			}
		}
		if (err == 0) {
			err = end_attach(ch, p, 1, u);
			if (err < 0) {
				end_free(ipc__priv(ch));
			}
		}
	}
	if (err == 0) {
		uint64_t one = 1;
		atomic_store(&p->has_peer, 1);
		p->refs++;
		ssize_t n = write(p->efd[EFD_ARRIVED], &one, sizeof(one));
		(void)n;
	}
	pthread_mutex_unlock(&reg_lock);
	return err;
}

/* ------------------------------------------------------------- driver -- */

static int
inp_open(ipc_channel *ch, const struct ipc_uri *u, int flags)
{
	if (u->name == NULL) {
		return ipc__err(
		        -EINVAL, u->text,
		        "inproc:// needs a NAME ([A-Za-z0-9._-]{1,200})");
	}
	if (flags & IPC_CREATE) {
		return inp_create(ch, u);
	}
	return inp_attach(ch, u);
}

static int
inp_pair(ipc_channel *a, ipc_channel *b, const struct ipc_uri *u)
{
	struct inp_pair *p;
	int err = pair_new(u, &p);

	if (err < 0) {
		return err;
	}
	err = end_attach(a, p, 0, u);
	if (err == 0) {
		err = end_attach(b, p, 1, u);
		if (err < 0) {
			end_free(ipc__priv(b));
		}
	}
	if (err < 0) {
		end_free(ipc__priv(a));
		pair_free(p);
		return err;
	}
	atomic_store(&p->has_peer, 1);
	p->refs = 2;
	return 0;
}

/* The creator's sends wait for the opener (-EAGAIN until it attached). */
static inline int
peer_there(const struct inp_end *e)
{
	return atomic_load_explicit(&e->pair->has_peer, memory_order_acquire);
}

static ssize_t
inp_send(ipc_channel *ch, const void *buf, size_t len)
{
	struct inp_end *e = ipc__priv(ch);

	if (__builtin_expect(!peer_there(e), 0)) {
		return -EAGAIN;
	}
	return ipc__rchan_send(ch, &e->rc, buf, len);
}

static ssize_t
inp_recv(ipc_channel *ch, void *buf, size_t cap)
{
	struct inp_end *e = ipc__priv(ch);
	ssize_t n = ipc__rchan_recv(ch, &e->rc, buf, cap);

	if (n >= 0) {
		ipc__rchan_rx_settle(&e->rc);
	}
	return n;
}

static int
inp_reserve(ipc_channel *ch, size_t len, void **buf)
{
	struct inp_end *e = ipc__priv(ch);

	if (!peer_there(e)) {
		return -EAGAIN;
	}
	return ipc__rchan_reserve(ch, &e->rc, len, buf);
}

static int
inp_commit(ipc_channel *ch, size_t len)
{
	struct inp_end *e = ipc__priv(ch);

	if (e->rc.tx.reserved && ipc_ring_peer_closed(&e->rc.tx)) {
		/* Nobody will read it: the reservation is dropped. */
		ipc_ring_unreserve(&e->rc.tx);
		return ipc__err(-EPIPE, ch->uri, "the peer closed");
	}
	return ipc__rchan_commit(ch, &e->rc, len);
}

static int
inp_acquire(ipc_channel *ch, const void **buf, size_t *len)
{
	struct inp_end *e = ipc__priv(ch);
	return ipc__rchan_acquire(ch, &e->rc, buf, len);
}

static int
inp_release(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);
	int r = ipc__rchan_release(ch, &e->rc);

	if (r == 0) {
		ipc__rchan_rx_settle(&e->rc);
	}
	return r;
}

static int
inp_close(ipc_channel *ch)
{
	struct inp_end *e = ipc__priv(ch);
	struct inp_pair *p = e->pair;
	int last;

	ipc__rchan_close(&e->rc);
	end_free(e);
	pthread_mutex_lock(&reg_lock);
	if (e->side == 0 && p->registered) {
		reg_remove(p);
	}
	last = --p->refs == 0;
	pthread_mutex_unlock(&reg_lock);
	if (last) {
		pair_free(p);
	}
	e->pair = NULL;
	return 0;
}

static int
inp_wait(ipc_channel *ch, short events, const struct timespec *deadline)
{
	struct inp_end *e = ipc__priv(ch);

	if ((events & IPC_POLLOUT) && !(events & IPC_POLLIN) &&
	    !peer_there(e)) {
		struct pollfd p = {.fd = e->pair->efd[EFD_ARRIVED],
		                   .events = POLLIN};
		return poll(&p, 1, ipc__remaining_ms(deadline)) == 0
		               ? -ETIMEDOUT
		               : 0;
	}
	return ipc__rchan_wait(&e->rc, events, deadline);
}

static int
inp_pollfds(ipc_channel *ch, short events, struct pollfd *pfd, int *retry_ms)
{
	struct inp_end *e = ipc__priv(ch);

	if ((events & IPC_POLLOUT) && !peer_there(e)) {
		int n = ipc__rchan_pollfds(&e->rc, events & ~IPC_POLLOUT, pfd,
		                           retry_ms);
		pfd[n].fd = e->pair->efd[EFD_ARRIVED];
		pfd[n].events = POLLIN;
		return n + 1;
	}
	return ipc__rchan_pollfds(&e->rc, events, pfd, retry_ms);
}

static short
inp_ready(ipc_channel *ch, short events, const struct pollfd *pfd, int npfd)
{
	struct inp_end *e = ipc__priv(ch);
	short r = ipc__rchan_ready(&e->rc, events, pfd, npfd);

	if (!peer_there(e)) {
		r &= (short)~IPC_POLLOUT;
	}
	return r;
}

static int
inp_fd(const ipc_channel *ch)
{
	/* ipc_fd makes the descriptor on first use. */
	struct inp_end *e = (struct inp_end *)ipc__cpriv(ch);
	pthread_mutex_lock(&e->rc.lock);
	int fd = ipc__rchan_fd_locked(&e->rc, 1);
	pthread_mutex_unlock(&e->rc.lock);
	return fd;
}

/* Both ends are this process. */
static int
inp_peer_cred(const ipc_channel *ch, pid_t *pid, uid_t *uid, gid_t *gid)
{
	struct ipc_cred c;

	ipc__cred_self(&c);
	return ipc__cred_out(&c, ch->uri, pid, uid, gid);
}

const struct ipc_driver ipc_driver_inproc = {
        .scheme = "inproc",
        .caps = IPC_CAP_RELIABLE | IPC_CAP_ORDERED | IPC_CAP_ZEROCOPY,
        .addr = IPC_ADDR_NAME,
        .opts = inp_opts,
        .priv_size = sizeof(struct inp_end),
        .open = inp_open,
        .pair = inp_pair,
        .send = inp_send,
        .recv = inp_recv,
        .close = inp_close,
        .wait = inp_wait,
        .pollfds = inp_pollfds,
        .ready = inp_ready,
        .reserve = inp_reserve,
        .commit = inp_commit,
        .acquire = inp_acquire,
        .release = inp_release,
        .fd = inp_fd,
        .peer_cred = inp_peer_cred,
};
